package recording

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

var testKey = []byte("test-key-0123456789abcdef-0123456789")

// fixedStart makes recorded times, and so golden transcripts, repeatable:
// frames are stamped relative to it.
var fixedStart = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

func newFactory(t testing.TB, cfg Config, o Options) *Factory {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	f, err := NewFactory(cfg, o)
	if err != nil {
		t.Fatalf("NewFactory: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func testInfo(id string) protocols.SessionInfo {
	return protocols.SessionInfo{
		ID:         id,
		Protocol:   protocols.Postgres,
		Identity:   protocols.Identity{Name: "alice", Groups: []string{"dba", "oncall"}, Method: "token"},
		Connection: "prod-pg",
		ClientAddr: "127.0.0.1:53422",
		Start:      time.Now(),
	}
}

func open(t testing.TB, f *Factory, id string) protocols.Recorder {
	t.Helper()
	rec, err := f.Open(testInfo(id))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return rec
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sampleSession records one of every frame type: an allowed SELECT with a
// result table, a denied DROP with its approval, a failing statement.
func sampleSession(t testing.TB, rec protocols.Recorder) {
	t.Helper()
	must(t, rec.Command(&protocols.Command{Kind: "query", Text: "SELECT id, email, note FROM users LIMIT 3"}, "SELECT id, email, note FROM users LIMIT 3"))
	must(t, rec.Decision(protocols.Decision{Action: protocols.Allow, Risk: protocols.RiskNone}))
	must(t, rec.Columns([]protocols.Column{
		{Name: "id", Table: "public.users", Type: protocols.TypeNumber},
		{Name: "email", Table: "public.users", Type: protocols.TypeText},
		{Name: "note", Table: "public.users", Type: protocols.TypeBytes, Binary: true},
	}))
	must(t, rec.Row([][]byte{[]byte("1"), []byte("a***@example.com"), []byte("first\nline")}))
	must(t, rec.Row([][]byte{[]byte("2"), nil, {0xde, 0xad, 0xbe, 0xef}}))
	must(t, rec.Row([][]byte{[]byte("10"), []byte("日本語@example.jp"), {}}))
	must(t, rec.Result(protocols.Result{Tag: "SELECT 3", Rows: 3, Duration: 3100 * time.Microsecond}))
	must(t, rec.Command(&protocols.Command{Kind: "query", Text: "DROP TABLE users"}, "DROP TABLE users"))
	must(t, rec.Decision(protocols.Decision{Action: protocols.Deny, Risk: protocols.RiskHigh, Rules: []string{"schema.drop"},
		Reason: "dropping a table needs an approval", ApprovalID: "ap_42", Reviewer: "bob"}))
	must(t, rec.Command(&protocols.Command{Kind: "parse", Text: "SELECT 1/0"}, "SELECT 1/0"))
	must(t, rec.Decision(protocols.Decision{Action: protocols.Allow, Risk: protocols.RiskLow, Rules: []string{"read.expression"}}))
	must(t, rec.Result(protocols.Result{Rows: 0, Duration: 250 * time.Microsecond, Error: "division by zero", Code: "22012"}))
}

type readResult struct {
	header Header
	frames []*Frame
	err    error // from Next: io.EOF when intact
}

func readFile(t testing.TB, path string, key []byte) readResult {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	return readBytes(t, b, key)
}

func readBytes(t testing.TB, b []byte, key []byte) readResult {
	t.Helper()
	rd, err := NewReader(bytes.NewReader(b), key)
	if err != nil {
		return readResult{err: err}
	}
	res := readResult{header: rd.Header()}
	for {
		f, err := rd.Next()
		if err != nil {
			res.err = err
			return res
		}
		res.frames = append(res.frames, f)
	}
}

func ofType(fs []*Frame, t FrameType) []*Frame {
	var out []*Frame
	for _, f := range fs {
		if f.Type == t {
			out = append(out, f)
		}
	}
	return out
}

func recordingPath(t testing.TB, f *Factory, id string) string {
	t.Helper()
	p, err := f.Path(id)
	must(t, err)
	return p
}

func listDir(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"))
	must(t, err)
	return m
}

// failingFile fails every write after the first n bytes, like a disk that
// fills up during a session.
type failingFile struct {
	n       int
	written int
	err     error
	closed  bool
}

func (f *failingFile) Write(p []byte) (int, error) {
	if f.written+len(p) > f.n {
		return 0, f.err
	}
	f.written += len(p)
	return len(p), nil
}

func (f *failingFile) Sync() error  { return nil }
func (f *failingFile) Close() error { f.closed = true; return nil }

var _ io.Writer = (*failingFile)(nil)

var errBoom = errors.New("boom")
