package recording

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

// TestHeaderJSONMatchesMarshal holds appendHeaderJSON to json.Marshal's
// bytes, field by field and for every kind of character a string can hold.
func TestHeaderJSONMatchesMarshal(t *testing.T) {
	var ascii strings.Builder
	for c := 0; c < 0x80; c++ {
		ascii.WriteByte(byte(c))
	}
	odd := []string{"", ascii.String(), "<script>&amp;</script>", "caf\u00e9 \U0001F600", "line\u2028para\u2029end",
		"bad \xff\xfe utf-8 \xe2\x82", "trailing \xe2", "\"quoted\" \\ back", "\u007f\u0080\u00a0"}
	start := time.Date(2026, 12, 7, 20, 1, 2, 345678900, time.UTC)
	zone := time.FixedZone("x", -(3*3600 + 30*60))
	cases := []Header{
		{SessionID: "s1", Identity: protocols.Identity{Name: "alice"}, Connection: "main", Protocol: protocols.Postgres,
			ClientAddr: "127.0.0.1:5000", AirlockVersion: "dev", Start: start, Rows: RowsFirst},
		{SessionID: "s2", Identity: protocols.Identity{Name: "bob", Groups: []string{"a", "b<c>"}, Method: "oidc"},
			Connection: "kv", Protocol: protocols.Redis, ClientAddr: "[::1]:6000", AirlockVersion: "1.2.3", Node: "node-1",
			Start: start.In(zone), Rows: RowsAll, FirstRows: 10, KeyID: "0123456789abcdef", Compression: CompressZstd},
		{Identity: protocols.Identity{Groups: []string{}}, Start: time.Time{}, FirstRows: -3},
		{SessionID: "s3", Start: start.Truncate(time.Second), Rows: RowsNone, Compression: CompressS2},
	}
	for _, s := range odd {
		cases = append(cases, Header{SessionID: s, Identity: protocols.Identity{Name: s, Groups: []string{s, s}, Method: s},
			Connection: s, Protocol: protocols.Protocol(s), ClientAddr: s, AirlockVersion: s, Node: s, Start: start,
			Rows: RowsMode(s), KeyID: s, Compression: Compression(s)})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		raw := make([]byte, rng.IntN(24))
		for i := range raw {
			raw[i] = byte(rng.IntN(256))
		}
		cases = append(cases, Header{SessionID: string(raw), Identity: protocols.Identity{Name: string(raw)}, Start: start})
	}
	for i, h := range cases {
		want, err := json.Marshal(&h)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendHeaderJSON([]byte("prefix"), &h)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if !bytes.Equal(got[len("prefix"):], want) {
			t.Errorf("case %d:\n got %s\nwant %s", i, got[len("prefix"):], want)
		}
	}
}

// TestHeaderJSONRefusesBadTime: a start json.Marshal cannot encode is an
// error, not a header that no reader could parse.
func TestHeaderJSONRefusesBadTime(t *testing.T) {
	h := Header{SessionID: "s", Start: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := json.Marshal(&h); err == nil {
		t.Fatal("json.Marshal accepted year 10000; the test's premise is gone")
	}
	if _, err := appendHeaderJSON(nil, &h); err == nil {
		t.Error("appendHeaderJSON accepted year 10000")
	}
	if _, err := encodeHeader(&h); err == nil {
		t.Error("encodeHeader accepted year 10000")
	}
}
