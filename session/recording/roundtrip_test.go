package recording

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

func TestRoundTripEveryFrameType(t *testing.T) {
	for _, tc := range []struct {
		name    string
		key     []byte
		codec   Compression
		version int
	}{
		{"unsigned", nil, CompressZstd, 1},
		{"signed", testKey, CompressZstd, 1},
		{"s2-unsigned", nil, CompressS2, 2},
		{"s2-signed", testKey, CompressS2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFactory(t, Config{Rows: RowsAll, Compression: tc.codec}, Options{Key: tc.key, Version: "1.2.3", Node: "node-a"})
			info := testInfo("rt-" + tc.name)
			rec, err := f.Open(info)
			must(t, err)
			sampleSession(t, rec)
			must(t, rec.Close("client closed"))

			res := readFile(t, recordingPath(t, f, info.ID), tc.key)
			if res.err != io.EOF {
				t.Fatalf("read ended with %v, want io.EOF", res.err)
			}
			h := res.header
			// A zstd header does not name its codec: version 1 readers
			// read it.
			var codec Compression
			if tc.codec != CompressZstd {
				codec = tc.codec
			}
			want := Header{Version: tc.version, Compression: codec, SessionID: info.ID, Identity: info.Identity, Connection: "prod-pg",
				Protocol: protocols.Postgres, ClientAddr: "127.0.0.1:53422", AirlockVersion: "1.2.3", Node: "node-a",
				Start: h.Start, Rows: RowsAll, KeyID: KeyID(tc.key)}
			if !reflect.DeepEqual(h, want) {
				t.Errorf("header = %+v\nwant %+v", h, want)
			}
			if !h.Start.Equal(info.Start) {
				t.Errorf("start = %v, want %v", h.Start, info.Start)
			}

			var got []string
			prev := h.Start
			for i, fr := range res.frames {
				if fr.Index != int64(i) {
					t.Errorf("frame %d has index %d", i, fr.Index)
				}
				if fr.Time.Before(prev) || fr.Time.After(time.Now()) {
					t.Errorf("frame %d time %v out of order (previous %v)", i, fr.Time, prev)
				}
				prev = fr.Time
				got = append(got, fr.Type.String())
			}
			wantTypes := "command decision columns row row row result command decision command decision result end trailer"
			if strings.Join(got, " ") != wantTypes {
				t.Errorf("frame types:\n got %s\nwant %s", strings.Join(got, " "), wantTypes)
			}

			fs := res.frames
			if c := fs[0].Command; *c != (CommandRecord{Kind: "query", Text: "SELECT id, email, note FROM users LIMIT 3"}) {
				t.Errorf("command = %+v", c)
			}
			wantDeny := protocols.Decision{Action: protocols.Deny, Risk: protocols.RiskHigh, Rules: []string{"schema.drop"},
				Reason: "dropping a table needs an approval", ApprovalID: "ap_42", Reviewer: "bob"}
			if !reflect.DeepEqual(*fs[8].Decision, wantDeny) {
				t.Errorf("decision = %+v, want %+v", fs[8].Decision, wantDeny)
			}
			if d := fs[1].Decision; d.Action != protocols.Allow || d.Rules != nil {
				t.Errorf("allow decision = %+v", d)
			}
			wantCols := []protocols.Column{
				{Name: "id", Table: "public.users", Type: protocols.TypeNumber},
				{Name: "email", Table: "public.users", Type: protocols.TypeText},
				{Name: "note", Table: "public.users", Type: protocols.TypeBytes, Binary: true},
			}
			if !reflect.DeepEqual(fs[2].Columns, wantCols) {
				t.Errorf("columns = %+v", fs[2].Columns)
			}
			wantRows := [][]Value{
				{{Bytes: []byte("1")}, {Bytes: []byte("a***@example.com")}, {Bytes: []byte("first\nline")}},
				{{Bytes: []byte("2")}, {Null: true}, {Bytes: []byte{0xde, 0xad, 0xbe, 0xef}}},
				{{Bytes: []byte("10")}, {Bytes: []byte("日本語@example.jp")}, {Bytes: []byte{}}},
			}
			for i, w := range wantRows {
				if !reflect.DeepEqual(fs[3+i].Row, w) {
					t.Errorf("row %d = %+v, want %+v", i, fs[3+i].Row, w)
				}
			}
			if r := fs[6].Result; *r != (protocols.Result{Tag: "SELECT 3", Rows: 3, Duration: 3100 * time.Microsecond}) {
				t.Errorf("result = %+v", r)
			}
			if r := fs[11].Result; *r != (protocols.Result{Duration: 250 * time.Microsecond, Error: "division by zero", Code: "22012"}) {
				t.Errorf("error result = %+v", r)
			}
			if fs[12].End != "client closed" {
				t.Errorf("end = %q", fs[12].End)
			}
			if s := fs[13].Seal; s.Count != 13 || (len(s.MAC) > 0) != (tc.key != nil) {
				t.Errorf("trailer = %+v", s)
			}

			rep, err := VerifyFile(recordingPath(t, f, info.ID), tc.key)
			must(t, err)
			if !rep.OK() || rep.Frames != 14 || rep.Sealed != 14 || !rep.Trailer.Valid || rep.Checked != (tc.key != nil) {
				t.Errorf("report = %+v", rep)
			}
		})
	}
}

func TestRowsModes(t *testing.T) {
	for _, tc := range []struct {
		mode  RowsMode
		first int
		want  int // row frames for two result sets of 10 rows
	}{
		{RowsNone, 0, 0},
		{RowsFirst, 3, 6},
		{RowsFirst, 0, 20}, // default 100
		{RowsAll, 0, 20},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			f := newFactory(t, Config{Rows: tc.mode, FirstRows: tc.first}, Options{})
			rec := open(t, f, "rows")
			for range 2 {
				must(t, rec.Command(&protocols.Command{}, "SELECT"))
				must(t, rec.Columns([]protocols.Column{{Name: "n"}}))
				for i := range 10 {
					must(t, rec.Row([][]byte{{byte('0' + i)}}))
				}
				must(t, rec.Result(protocols.Result{Rows: 10}))
			}
			must(t, rec.Close("done"))
			res := readFile(t, recordingPath(t, f, "rows"), nil)
			if res.err != io.EOF {
				t.Fatal(res.err)
			}
			rows := ofType(res.frames, FrameRow)
			if len(rows) != tc.want {
				t.Fatalf("%d row frames, want %d", len(rows), tc.want)
			}
			if tc.want == 6 && string(rows[3].Row[0].Bytes) != "0" {
				t.Errorf("second result set should restart at row 0, got %q", rows[3].Row[0].Bytes)
			}
			if got := len(ofType(res.frames, FrameColumns)); got != 2 {
				t.Errorf("%d columns frames, want 2 in every mode", got)
			}
			wantRows := tc.mode
			if wantRows == "" {
				wantRows = RowsFirst
			}
			if res.header.Rows != wantRows {
				t.Errorf("header rows = %q", res.header.Rows)
			}
		})
	}
}

func TestOversizedValuesAreCut(t *testing.T) {
	f := newFactory(t, Config{Rows: RowsAll}, Options{})
	rec := open(t, f, "big")
	text := strings.Repeat("INSERT INTO t VALUES ('é'); ", maxText/20)
	must(t, rec.Command(&protocols.Command{Kind: "query"}, text))
	big := bytes.Repeat([]byte("x"), maxValue+1000)
	must(t, rec.Row([][]byte{big, []byte("small"), nil}))
	// Forty values of maxValue exceed the frame budget: the row still fits.
	many := make([][]byte, 40)
	for i := range many {
		many[i] = big
	}
	must(t, rec.Row(many))
	must(t, rec.Close("done"))

	res := readFile(t, recordingPath(t, f, "big"), nil)
	if res.err != io.EOF {
		t.Fatalf("read: %v (%d frames)", res.err, len(res.frames))
	}
	c := res.frames[0].Command
	if int64(len(c.Text))+c.Omitted != int64(len(text)) || len(c.Text) > maxText || !strings.HasPrefix(text, c.Text) {
		t.Errorf("command cut to %d bytes with %d omitted, from %d", len(c.Text), c.Omitted, len(text))
	}
	rows := ofType(res.frames, FrameRow)
	r := rows[0].Row
	if len(r[0].Bytes) != maxValue || r[0].Omitted != 1000 || string(r[1].Bytes) != "small" || !r[2].Null {
		t.Errorf("row = %d bytes + %d omitted, %q, %v", len(r[0].Bytes), r[0].Omitted, r[1].Bytes, r[2].Null)
	}
	var kept int
	for i, v := range rows[1].Row {
		kept += len(v.Bytes)
		if int64(len(v.Bytes))+v.Omitted != int64(len(big)) {
			t.Errorf("value %d: %d kept + %d omitted != %d", i, len(v.Bytes), v.Omitted, len(big))
		}
	}
	if kept > maxFrameBody || kept < maxFrameBody/2 {
		t.Errorf("wide row kept %d bytes, want close to the %d frame limit", kept, maxFrameBody)
	}
}

func TestSmallBlocksEndWithCheckpoints(t *testing.T) {
	f := newFactory(t, Config{Rows: RowsAll, BlockSize: MinBlockSize}, Options{Key: testKey})
	rec := open(t, f, "blocks")
	must(t, rec.Columns([]protocols.Column{{Name: "v"}}))
	for i := range 2000 {
		must(t, rec.Row([][]byte{[]byte(strings.Repeat("row ", 5+i%7))}))
	}
	must(t, rec.Close("done"))
	rep, err := VerifyFile(recordingPath(t, f, "blocks"), testKey)
	must(t, err)
	if !rep.OK() || rep.Blocks < 5 {
		t.Fatalf("report = %v (%d blocks)", rep, rep.Blocks)
	}
	res := readFile(t, recordingPath(t, f, "blocks"), testKey)
	if cps := ofType(res.frames, FrameCheckpoint); len(cps) != rep.Blocks-1 {
		t.Errorf("%d checkpoints for %d blocks", len(cps), rep.Blocks)
	}
}

func TestUnknownFrameTypeIsSkippable(t *testing.T) {
	f := newFactory(t, Config{}, Options{})
	rec := open(t, f, "future").(*recorder)
	rec.mu.Lock()
	s := rec.begin(FrameType(42))
	*rec.raw = append(*rec.raw, "payload of a later version"...)
	must(t, rec.seal(s, FrameType(42)))
	rec.mu.Unlock()
	must(t, rec.Close("done"))
	res := readFile(t, recordingPath(t, f, "future"), nil)
	if res.err != io.EOF || res.frames[0].Type != 42 || string(res.frames[0].Payload) != "payload of a later version" {
		t.Fatalf("frames %+v, err %v", res.frames, res.err)
	}
}

func TestRecorderAfterClose(t *testing.T) {
	for _, mode := range []RowsMode{RowsNone, RowsFirst, RowsAll} {
		f := newFactory(t, Config{Rows: mode, FirstRows: 1}, Options{})
		rec := open(t, f, "closed-"+string(mode))
		must(t, rec.Row(nil))
		must(t, rec.Close("done"))
		for range 2 { // past first_rows too
			if err := rec.Row(nil); !errors.Is(err, ErrClosed) {
				t.Errorf("%s: Row after Close = %v, want ErrClosed", mode, err)
			}
		}
	}
	f := newFactory(t, Config{}, Options{})
	rec := open(t, f, "closed")
	must(t, rec.Close("done"))
	if err := rec.Command(&protocols.Command{}, "x"); !errors.Is(err, ErrClosed) {
		t.Errorf("Command after Close = %v, want ErrClosed", err)
	}
	if err := rec.Close("again"); err != nil {
		t.Errorf("second Close = %v, want the first's nil", err)
	}
}

// TestValidSessionID holds the hand-written check to the rule it replaced,
// the expression below, on edge cases and random strings.
func TestValidSessionID(t *testing.T) {
	rule := regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$`)
	cases := []string{"", ".", "a", "-", "_", "a.", ".a", "a/b", "a\\b", "é", "a\x00", strings.Repeat("a", 128),
		strings.Repeat("a", 129), "20261129T212716Z-48058e7d383c", "A-Z_0.9"}
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "aZ09._-/ \x00\xff"
	for range 20000 {
		b := make([]byte, rng.IntN(6)+rng.IntN(2)*126)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for _, id := range cases {
		if got, want := validSessionID(id), rule.MatchString(id); got != want {
			t.Errorf("validSessionID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestSessionIDs(t *testing.T) {
	f := newFactory(t, Config{}, Options{})
	for _, id := range []string{"", "../escape", "a/b", ".hidden", "x\x00y", strings.Repeat("a", 129), "a b"} {
		if _, err := f.Open(testInfo(id)); !errors.Is(err, ErrInvalidSessionID) {
			t.Errorf("Open(%q) = %v, want ErrInvalidSessionID", id, err)
		}
	}
	if n := len(listDir(t, f.Dir())); n != 0 {
		t.Errorf("%d files after refused ids", n)
	}
	rec := open(t, f, "01HX-abc_def.1")
	sampleSession(t, rec)
	must(t, rec.Close("done"))
	// A reused id never overwrites the earlier recording.
	if _, err := f.Open(testInfo("01HX-abc_def.1")); err == nil {
		t.Fatal("second Open of the same id succeeded")
	}
	if rep, _ := VerifyFile(recordingPath(t, f, "01HX-abc_def.1"), nil); !rep.OK() {
		t.Errorf("first recording damaged: %v", rep)
	}
}

func TestConcurrentCloseReturnsTheSameResult(t *testing.T) {
	f := newFactory(t, Config{}, Options{})
	ff := &failingFile{n: 1 << 20, err: errBoom}
	f.create = func(string) (file, error) { return ff, nil }
	rec := open(t, f, "closing")
	ff.n = 0 // the trailer's write fails
	errs := make(chan error, 4)
	for range 4 {
		go func() { errs <- rec.Close("done") }()
	}
	for range 4 {
		if err := <-errs; !errors.Is(err, errBoom) {
			t.Errorf("Close = %v, want the write error", err)
		}
	}
}

func TestLocate(t *testing.T) {
	f := newFactory(t, Config{}, Options{})
	rec := open(t, f, "findme")
	must(t, rec.Close("done"))
	path := recordingPath(t, f, "findme")
	for _, arg := range []string{"findme", path} {
		if got, err := Locate(f.Dir(), arg); err != nil || got != path {
			t.Errorf("Locate(%q) = %q, %v", arg, got, err)
		}
	}
	for _, arg := range []string{"missing", "../etc/passwd", f.Dir()} {
		if _, err := Locate(f.Dir(), arg); err == nil {
			t.Errorf("Locate(%q) succeeded", arg)
		}
	}
}

// TestClockedFrames: the *At methods date their frames with the caller's
// time, and a time earlier than the frame before is moved up to it.
func TestClockedFrames(t *testing.T) {
	f := newFactory(t, Config{Rows: RowsAll}, Options{})
	info := testInfo("clocked")
	rec, err := f.Open(info)
	must(t, err)
	cr := rec.(protocols.ClockedRecorder)
	base := time.Now()
	at := []time.Time{base.Add(time.Second), base.Add(3 * time.Second), base.Add(4 * time.Second), base.Add(2 * time.Second)}
	must(t, cr.CommandAt(&protocols.Command{Kind: "execute"}, "SELECT 1", at[0]))
	must(t, cr.ColumnsAt([]protocols.Column{{Name: "a"}}, at[1]))
	must(t, cr.ResultAt(protocols.Result{Tag: "SELECT 1", Rows: 1}, at[2]))
	must(t, cr.ResultAt(protocols.Result{Tag: "SELECT 1", Rows: 1}, at[3]))
	must(t, rec.Close("client closed"))
	res := readFile(t, recordingPath(t, f, info.ID), nil)
	want := []time.Time{at[0], at[1], at[2], at[2]} // the last may not go back
	for i, w := range want {
		fr := res.frames[i]
		// The file keeps microseconds from the session's wall-clock start.
		if d := fr.Time.Sub(w.Round(0)); d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("frame %d (%s) at %v, want %v", i, fr.Type, fr.Time, w)
		}
	}
}
