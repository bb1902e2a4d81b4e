package recording

import (
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
)

// httpInfo describes an HTTP session.
func httpInfo(id string) protocols.SessionInfo {
	info := testInfo(id)
	info.Protocol, info.Connection = protocols.HTTP, "billing-api"
	return info
}

// httpSession records a GET whose response body is cut to a sample, a
// POST with a binary body, an MCP tool call that is denied, and a request
// the upstream never answered.
func httpSession(t testing.TB, rec protocols.Recorder) {
	t.Helper()
	get := &protocols.Command{Protocol: protocols.HTTP, Kind: "request", Text: "GET /v1/charges?limit=2",
		Payload: &protocols.Payload{Method: "GET", Path: "/v1/charges?limit=2"}}
	must(t, rec.Command(get, "GET /v1/charges?limit=2"))
	must(t, rec.Decision(protocols.Decision{Action: protocols.Allow}))
	body := "{\"data\": [\n  {\"id\": \"ch_1\", \"email\": \"a***@example.com\"},\n  " + strings.Repeat("x", MaxBodySample) + "\n]}\n"
	must(t, rec.Exchange(protocols.Exchange{Method: "GET", Path: "/v1/charges?limit=2", Status: 200,
		RequestHeaders:  []protocols.Header{{Name: "Accept", Value: "application/json"}, {Name: "X-Trace", Value: "bold \x1b[1m"}},
		ResponseHeaders: []protocols.Header{{Name: "Content-Type", Value: "application/json"}},
		ResponseBody:    []byte(body), ResponseBytes: 9000}))
	post := &protocols.Command{Protocol: protocols.HTTP, Kind: "request", Text: "POST /v1/upload",
		Payload: &protocols.Payload{Method: "POST", Path: "/v1/upload", Body: []byte{0x1f, 0x8b, 8, 0}}}
	must(t, rec.Command(post, "POST /v1/upload"))
	must(t, rec.Decision(protocols.Decision{Action: protocols.Allow, Risk: protocols.RiskMedium, Rules: []string{"http.write"}}))
	must(t, rec.Exchange(protocols.Exchange{Method: "POST", Path: "/v1/upload", Status: 201,
		RequestHeaders: []protocols.Header{{Name: "Content-Type", Value: "application/gzip"}},
		RequestBody:    []byte{0x1f, 0x8b, 8, 0}, RequestBytes: 4,
		ResponseBody: []byte(`{"ok":true}`)}))
	tool := &protocols.Command{Protocol: protocols.HTTP, Kind: "tool", Text: `refund {"charge": "ch_1"}`,
		Payload: &protocols.Payload{Tool: "refund", Arguments: []byte(`{"charge": "ch_1"}`)}}
	must(t, rec.Command(tool, `refund {"charge": "ch_1"}`))
	must(t, rec.Decision(protocols.Decision{Action: protocols.Deny, Risk: protocols.RiskHigh, Rules: []string{"mcp.refund"}, Reason: "refunds need an approval"}))
	must(t, rec.Command(&protocols.Command{Protocol: protocols.HTTP, Kind: "request", Text: "DELETE /v1/cache",
		Payload: &protocols.Payload{Method: "DELETE", Path: "/v1/cache"}}, "DELETE /v1/cache"))
	must(t, rec.Decision(protocols.Decision{Action: protocols.Allow}))
	must(t, rec.Exchange(protocols.Exchange{Method: "DELETE", Path: "/v1/cache"}))
}

// TestExchangeRoundTrip records an HTTP session, reads it back, verifies
// it and compares both replays with their golden files.
func TestExchangeRoundTrip(t *testing.T) {
	b := recordRepeatably(t, Config{Rows: RowsFirst, Compression: CompressS2}, httpInfo("01JHTTP"), func(rec protocols.Recorder) { httpSession(t, rec) })
	res := readBytes(t, b, testKey)
	if res.err != io.EOF {
		t.Fatalf("read ended with %v", res.err)
	}
	if h := res.header; h.Version != 3 || h.Compression != CompressS2 || h.Protocol != protocols.HTTP {
		t.Errorf("header %+v, want version 3 naming s2", h)
	}
	xs := ofType(res.frames, FrameExchange)
	if len(xs) != 3 {
		t.Fatalf("%d exchange frames, want 3", len(xs))
	}
	first := xs[0].Exchange
	want := &ExchangeRecord{Method: "GET", Path: "/v1/charges?[removed]", Status: 200,
		RequestHeaders:  []protocols.Header{{Name: "Accept", Value: "application/json"}, {Name: "X-Trace", Value: "bold \x1b[1m"}},
		ResponseHeaders: []protocols.Header{{Name: "Content-Type", Value: "application/json"}},
		ResponseBody:    Body{Size: 9000}}
	sample := first.ResponseBody.Sample
	first.ResponseBody.Sample = nil
	if !reflect.DeepEqual(first, want) {
		t.Errorf("exchange:\n got %+v\nwant %+v", first, want)
	}
	if len(sample) != MaxBodySample || !bytes.HasPrefix(sample, []byte(`{"data": [`)) {
		t.Errorf("response body sample of %d bytes: %.40q", len(sample), sample)
	}
	if x := xs[1].Exchange; !bytes.Equal(x.RequestBody.Sample, []byte{0x1f, 0x8b, 8, 0}) || x.ResponseBody.Size != 11 || x.Status != 201 {
		t.Errorf("exchange %+v", x)
	}
	cmds := ofType(res.frames, FrameCommand)
	if c := cmds[0].Command; c.Method != "GET" || c.Path != "/v1/charges?[removed]" || c.Tool != "" {
		t.Errorf("command %+v", c)
	}
	if c := cmds[2].Command; c.Tool != "refund" || c.Method != "" || c.Text != `refund {"charge": "ch_1"}` {
		t.Errorf("tool command %+v", c)
	}
	checkReplayGolden(t, b, "http")
}

// TestResponseBodyFollowsRowsNone: with rows: none an exchange keeps the
// response body's size but none of its bytes, as no row is kept.
func TestResponseBodyFollowsRowsNone(t *testing.T) {
	f := newFactory(t, Config{Rows: RowsNone}, Options{})
	rec, err := f.Open(httpInfo("none"))
	must(t, err)
	must(t, rec.Exchange(protocols.Exchange{Method: "POST", Path: "/", Status: 200,
		RequestBody: []byte("request"), ResponseBody: []byte("response rows")}))
	must(t, rec.Close("done"))
	x := ofType(readFile(t, recordingPath(t, f, "none"), nil).frames, FrameExchange)[0].Exchange
	if string(x.RequestBody.Sample) != "request" || len(x.ResponseBody.Sample) != 0 || x.ResponseBody.Size != 13 {
		t.Errorf("exchange %+v", x)
	}
}

// TestCredentialHeaders pins down which header names carry credentials.
func TestCredentialHeaders(t *testing.T) {
	for _, name := range []string{"Authorization", "proxy-authorization", "Cookie", "Set-Cookie", "X-Api-Key", "X-Auth-Token",
		"X-Amz-Security-Token", "X-Client-Secret", "X-DB-Password", "Apikey", "X-Goog-Api_Key", "X-Credential"} {
		if !credentialHeader(name) {
			t.Errorf("%s is recorded", name)
		}
	}
	for _, name := range []string{"Accept", "Content-Type", "X-Request-Id", "User-Agent", "Content-Length", "Host"} {
		if credentialHeader(name) {
			t.Errorf("%s is removed", name)
		}
	}
}

// TestMySQLBinaryValuesStayBytes: a MySQL session's native type ids are
// not PostgreSQL OIDs. Its binary values replay as bytes even when the id
// happens to be an OID pgx knows (23 is int4, as which these bytes read
// -42), and the JSON replay names the id native_type.
func TestMySQLBinaryValuesStayBytes(t *testing.T) {
	minus42 := []byte{0xff, 0xff, 0xff, 0xd6}
	for _, tc := range []struct {
		protocol protocols.Protocol
		text     []string
		json     []string
	}{
		{protocols.MySQL, []string{`$1 = \xffffffd6`, `\xffffffd6`}, []string{`{"hex":"ffffffd6","native_type":23}`, `"binary":true,"native_type":23}`}},
		{protocols.Postgres, []string{`$1 = '-42'`, ` -42`}, []string{`{"hex":"ffffffd6","oid":23}`, `"binary":true,"oid":23}`}},
	} {
		t.Run(string(tc.protocol), func(t *testing.T) {
			info := testInfo("native")
			info.Protocol = tc.protocol
			b := recordRepeatably(t, Config{Rows: RowsAll, Parameters: true}, info, func(rec protocols.Recorder) {
				must(t, rec.Parameters("", []protocols.Param{{Value: minus42, Binary: true, Native: 23}}))
				must(t, rec.Columns([]protocols.Column{{Name: "n", Type: protocols.TypeNumber, Binary: true, Native: 23}}))
				must(t, rec.Row([][]byte{minus42}))
				must(t, rec.Result(protocols.Result{Rows: 1}))
			})
			var text, js bytes.Buffer
			_, err := Replay(&text, bytes.NewReader(b), ReplayOptions{})
			must(t, err)
			_, err = Replay(&js, bytes.NewReader(b), ReplayOptions{JSON: true})
			must(t, err)
			for _, want := range tc.text {
				if !strings.Contains(text.String(), want) {
					t.Errorf("replay lacks %q:\n%s", want, text.String())
				}
			}
			for _, want := range tc.json {
				if !strings.Contains(js.String(), want) {
					t.Errorf("replay JSON lacks %s:\n%s", want, js.String())
				}
			}
			if tc.protocol != protocols.Postgres && (strings.Contains(text.String(), "-42") || strings.Contains(js.String(), `"oid"`)) {
				t.Errorf("a MySQL value replays as a PostgreSQL int4:\n%s\n%s", text.String(), js.String())
			}
		})
	}
}
