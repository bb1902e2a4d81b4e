package recording

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
)

// redisInfo describes a Redis session.
func redisInfo(id string) protocols.SessionInfo {
	info := testInfo(id)
	info.Protocol, info.Connection = protocols.Redis, "cache"
	return info
}

// redisCommand records a command and its allow decision as the Pipeline
// does; the arguments are the original, the text the redacted form.
func redisCommand(t testing.TB, rec protocols.Recorder, redacted string, args ...string) {
	t.Helper()
	must(t, rec.Command(&protocols.Command{Protocol: protocols.Redis, Kind: "command", Args: args}, redacted))
	must(t, rec.Decision(protocols.Decision{Action: protocols.Allow}))
}

// redisSession records one reply of each shape: scalars, an aggregate cut
// to first_rows values, an error, a null, a map, and pushes past
// first_rows replies.
func redisSession(t testing.TB, rec protocols.Recorder) {
	t.Helper()
	redisCommand(t, rec, "GET user:1:email", "GET", "user:1:email")
	must(t, rec.Reply(protocols.Reply{Kind: "bulk", Values: [][]byte{[]byte("a***@example.com")}, Count: 1}))
	redisCommand(t, rec, "LRANGE recent 0 -1", "LRANGE", "recent", "0", "-1")
	must(t, rec.Reply(protocols.Reply{Kind: "array", Count: 5, Values: [][]byte{
		[]byte("first\nline"), {0xff, 0x00, 0x7f}, []byte("red \x1b[31mtext"), nil, []byte("past first_rows")}}))
	redisCommand(t, rec, "INCR hits", "INCR", "hits")
	must(t, rec.Reply(protocols.Reply{Kind: "integer", Values: [][]byte{[]byte("42")}, Count: 1}))
	redisCommand(t, rec, "FLUSHALL", "FLUSHALL")
	must(t, rec.Reply(protocols.Reply{Kind: "error", Values: [][]byte{[]byte("ERR unknown command 'FLUSHALL'")}, Count: 1}))
	redisCommand(t, rec, "GET missing", "GET", "missing")
	must(t, rec.Reply(protocols.Reply{Kind: "null"}))
	redisCommand(t, rec, "HGETALL user:1", "HGETALL", "user:1")
	must(t, rec.Reply(protocols.Reply{Kind: "map", Count: 4, Values: [][]byte{[]byte("name"), []byte("Alice"), []byte("plan"), []byte("pro")}}))
	redisCommand(t, rec, "SUBSCRIBE news", "SUBSCRIBE", "news")
	for i := range 4 {
		must(t, rec.Reply(protocols.Reply{Kind: "push", Count: 3, Values: [][]byte{[]byte("message"), []byte("news"), fmt.Appendf(nil, "item %d", i)}}))
	}
}

// TestReplyRoundTrip records a Redis session, reads it back, verifies it
// and compares both replays with their golden files.
func TestReplyRoundTrip(t *testing.T) {
	b := recordRepeatably(t, Config{Rows: RowsFirst, FirstRows: 3, Compression: CompressZstd}, redisInfo("01JREDIS"), func(rec protocols.Recorder) { redisSession(t, rec) })
	res := readBytes(t, b, testKey)
	if res.err != io.EOF {
		t.Fatalf("read ended with %v", res.err)
	}
	if h := res.header; h.Version != 3 || h.Compression != CompressZstd || h.Protocol != protocols.Redis {
		t.Errorf("header %+v, want version 3 naming zstd", h)
	}
	var got []ReplyRecord
	for _, f := range ofType(res.frames, FrameReply) {
		got = append(got, *f.Reply)
	}
	v := func(s string) Value { return Value{Bytes: []byte(s)} }
	push := func(i int) ReplyRecord {
		return ReplyRecord{Kind: "push", Count: 3, Values: []Value{v("message"), v("news"), v(fmt.Sprintf("item %d", i))}}
	}
	want := []ReplyRecord{
		{Kind: "bulk", Count: 1, Values: []Value{v("a***@example.com")}},
		{Kind: "array", Count: 5, Values: []Value{v("first\nline"), {Bytes: []byte{0xff, 0x00, 0x7f}}, v("red \x1b[31mtext")}},
		{Kind: "integer", Count: 1, Values: []Value{v("42")}},
		{Kind: "error", Count: 1, Values: []Value{v("ERR unknown command 'FLUSHALL'")}},
		{Kind: "null", Values: []Value{}},
		{Kind: "map", Count: 4, Values: []Value{v("name"), v("Alice"), v("plan")}},
		push(0), push(1), push(2),
		{Kind: "push", Count: 3, Values: []Value{}}, // the fourth reply to SUBSCRIBE: past first_rows
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("replies:\n got %+v\nwant %+v", got, want)
	}
	if c := ofType(res.frames, FrameCommand)[1].Command; c.Args != 4 || c.Text != "LRANGE recent 0 -1" {
		t.Errorf("command %+v", c)
	}
	checkReplayGolden(t, b, "redis")
}

// TestReplyRowsModes: the rows setting bounds the values kept, a reply
// counting as one row of its command; the count is always recorded, and
// an error reply keeps its message in every mode.
func TestReplyRowsModes(t *testing.T) {
	for _, tc := range []struct {
		mode  RowsMode
		first int
		want  []int // values kept of each of 5 replies of 10 values, per command
	}{
		{RowsNone, 0, []int{0, 0, 0, 0, 0}},
		{RowsFirst, 3, []int{3, 3, 3, 0, 0}},
		{RowsAll, 0, []int{10, 10, 10, 10, 10}},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			f := newFactory(t, Config{Rows: tc.mode, FirstRows: tc.first}, Options{})
			rec, err := f.Open(redisInfo("rows"))
			must(t, err)
			values := make([][]byte, 10)
			for i := range values {
				values[i] = fmt.Appendf(nil, "v%d", i)
			}
			for range 2 { // the second command starts counting again
				redisCommand(t, rec, "LRANGE l 0 9", "LRANGE", "l", "0", "9")
				for range 5 {
					must(t, rec.Reply(protocols.Reply{Kind: "array", Values: values, Count: 10}))
				}
				must(t, rec.Reply(protocols.Reply{Kind: "error", Values: [][]byte{[]byte("ERR x")}}))
			}
			must(t, rec.Close("done"))
			res := readFile(t, recordingPath(t, f, "rows"), nil)
			if res.err != io.EOF {
				t.Fatal(res.err)
			}
			replies := ofType(res.frames, FrameReply)
			if len(replies) != 12 {
				t.Fatalf("%d reply frames, want 12 in every mode", len(replies))
			}
			for i, fr := range replies {
				rep, want, count := fr.Reply, 1, int64(1) // the error reply keeps its message
				if i%6 < 5 {
					want, count = tc.want[i%6], 10
				}
				if len(rep.Values) != want || rep.Count != count {
					t.Errorf("reply %d: %d values of %d, want %d of %d", i, len(rep.Values), rep.Count, want, count)
				}
				for j, val := range rep.Values {
					if i%6 < 5 && !bytes.Equal(val.Bytes, values[j]) {
						t.Errorf("reply %d value %d = %q", i, j, val.Bytes)
					}
				}
			}
		})
	}
}

// TestHugeReplyFitsAFrame: a reply of more values than a frame can hold
// keeps what fits and counts the rest, instead of failing the session.
func TestHugeReplyFitsAFrame(t *testing.T) {
	f := newFactory(t, Config{Rows: RowsAll}, Options{})
	rec, err := f.Open(redisInfo("huge"))
	must(t, err)
	values := make([][]byte, 600_000)
	for i := range values {
		values[i] = []byte{'x'}
	}
	big := bytes.Repeat([]byte("y"), maxValue+5)
	must(t, rec.Reply(protocols.Reply{Kind: "array", Values: values}))
	must(t, rec.Reply(protocols.Reply{Kind: "array", Values: [][]byte{big, big, big, big, big, big, big, big, big, big, big, big, big, big, big, big, big}}))
	must(t, rec.Close("done"))
	res := readFile(t, recordingPath(t, f, "huge"), nil)
	if res.err != io.EOF {
		t.Fatal(res.err)
	}
	replies := ofType(res.frames, FrameReply)
	if r := replies[0].Reply; r.Count != 600_000 || len(r.Values) < 400_000 || len(r.Values) >= 600_000 {
		t.Errorf("kept %d of %d values", len(r.Values), r.Count)
	}
	r := replies[1].Reply
	if r.Count != 17 || len(r.Values) != 15 || len(r.Values[0].Bytes) != maxValue || r.Values[0].Omitted != 5 {
		t.Errorf("kept %d of %d values, the first %d bytes and %d omitted", len(r.Values), r.Count, len(r.Values[0].Bytes), r.Values[0].Omitted)
	}
}

// TestNewFramesNeedVersion3: a PostgreSQL session's recording is version
// 1 or 2, whose readers would skip a reply or an exchange as unknown, so
// the writer refuses them and the session ends.
func TestNewFramesNeedVersion3(t *testing.T) {
	for name, record := range map[string]func(protocols.Recorder) error{
		"reply":    func(rec protocols.Recorder) error { return rec.Reply(protocols.Reply{Kind: "bulk"}) },
		"exchange": func(rec protocols.Recorder) error { return rec.Exchange(protocols.Exchange{Method: "GET"}) },
	} {
		t.Run(name, func(t *testing.T) {
			f := newFactory(t, Config{}, Options{})
			rec := open(t, f, "pg-"+name)
			if err := record(rec); !errors.Is(err, ErrRecordingFailed) || !errors.Is(err, errFrameUnsupported) {
				t.Fatalf("%s in a version 1 recording = %v", name, err)
			}
			if err := rec.Command(&protocols.Command{}, "SELECT 1"); !errors.Is(err, ErrRecordingFailed) {
				t.Errorf("the failure is not sticky: %v", err)
			}
			_ = rec.Close("done")
		})
	}
}
