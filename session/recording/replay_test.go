package recording

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

// goldenRecording records the sample session with a clock that advances
// 1.5 ms per frame from a fixed start, so transcripts are repeatable.
func goldenRecording(t *testing.T) []byte {
	t.Helper()
	return recordRepeatably(t, Config{Rows: RowsFirst, FirstRows: 2, Compression: CompressZstd}, testInfo("01JGOLDEN"), func(rec protocols.Recorder) {
		sampleSession(t, rec)
		must(t, rec.Command(&protocols.Command{Kind: "query"}, "SELECT\n  name\nFROM\n  plans"))
		must(t, rec.Decision(protocols.Decision{Action: protocols.Allow}))
		must(t, rec.Columns([]protocols.Column{{Name: "name", Type: protocols.TypeText}}))
		must(t, rec.Row([][]byte{[]byte("bold \x1b[1mmove\x1b[0m")}))
		must(t, rec.Row([][]byte{[]byte(strings.Repeat("long text ", 10))}))
		must(t, rec.Row([][]byte{[]byte("not recorded: past first_rows")}))
		must(t, rec.Result(protocols.Result{Tag: "SELECT 3", Rows: 3, Duration: 900 * time.Microsecond}))
	})
}

// recordRepeatably records the session info describes, signed, with a
// clock that advances 1.5 ms per frame from fixedStart, and returns the
// file.
func recordRepeatably(t testing.TB, cfg Config, info protocols.SessionInfo, session func(rec protocols.Recorder)) []byte {
	t.Helper()
	f := newFactory(t, cfg, Options{Key: testKey, Version: "0.9.0", Node: "gw-1"})
	var ticks atomic.Int64
	f.since = func(time.Time) time.Duration { return time.Duration(ticks.Add(1)) * 1500 * time.Microsecond }
	info.Start = fixedStart
	rec, err := f.Open(info)
	must(t, err)
	session(rec)
	must(t, rec.Close("client closed"))
	b, err := os.ReadFile(recordingPath(t, f, info.ID))
	must(t, err)
	return b
}

// checkReplayGolden replays b in both forms, checks that it is intact and
// that no raw escape character reaches the transcript, and compares each
// form with its golden file, name.golden and name.jsonl.golden.
func checkReplayGolden(t *testing.T, b []byte, name string) {
	t.Helper()
	for _, js := range []bool{false, true} {
		var out bytes.Buffer
		rep, err := Replay(&out, bytes.NewReader(b), ReplayOptions{Key: testKey, JSON: js})
		must(t, err)
		if !rep.OK() || !rep.Checked {
			t.Fatalf("report: %v", rep)
		}
		if bytes.ContainsRune(out.Bytes(), 0x1b) {
			t.Error("transcript carries a raw escape character from recorded data")
		}
		golden := name + ".golden"
		if js {
			golden = name + ".jsonl.golden"
		}
		checkGolden(t, golden, out.Bytes())
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		must(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	must(t, err)
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update if intended):\n%s", name, got)
	}
}

func TestReplayGolden(t *testing.T) {
	b := goldenRecording(t)
	for _, tc := range []struct {
		golden string
		opts   ReplayOptions
	}{
		{"replay.golden", ReplayOptions{Key: testKey}},
		{"replay.jsonl.golden", ReplayOptions{Key: testKey, JSON: true}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			var out bytes.Buffer
			rep, err := Replay(&out, bytes.NewReader(b), tc.opts)
			must(t, err)
			if !rep.OK() {
				t.Fatalf("report: %v", rep)
			}
			if bytes.ContainsRune(out.Bytes(), 0x1b) {
				t.Error("transcript carries a raw escape character from recorded data")
			}
			checkGolden(t, tc.golden, out.Bytes())
		})
	}
}

func TestReplayJSONLines(t *testing.T) {
	b := goldenRecording(t)
	var out bytes.Buffer
	_, err := Replay(&out, bytes.NewReader(b), ReplayOptions{JSON: true, Key: testKey})
	must(t, err)
	sc := bufio.NewScanner(&out)
	var types []string
	var last map[string]any
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line is not one JSON object: %v: %s", err, sc.Text())
		}
		types = append(types, m["type"].(string))
		last = m
	}
	if types[0] != "header" || types[len(types)-1] != "verification" || last["ok"] != true || last["status"] != "intact" {
		t.Errorf("types %v, last %v", types, last)
	}
}

func TestReplayShowsWhatItCouldRead(t *testing.T) {
	b := goldenRecording(t)
	offs := blockOffsets(t, b)
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"truncated", b[:len(b)-3], "verification: unfinished"},
		{"altered", func() []byte { c := bytes.Clone(b); c[offs[0]+20] ^= 1; return c }(), "verification: altered: first bad frame 0"},
		{"not a recording", []byte("SELECT 1"), "verification: altered: header: not an Airlock recording"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			rep, err := Replay(&out, bytes.NewReader(tc.data), ReplayOptions{Key: testKey})
			must(t, err)
			if rep.OK() || !strings.Contains(out.String(), tc.want) {
				t.Errorf("transcript does not end with %q:\n%s", tc.want, out.String())
			}
		})
	}
}
