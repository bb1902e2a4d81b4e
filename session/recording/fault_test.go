package recording

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/airlock-gw/airlock/protocols"
)

func TestUnwritableDirectory(t *testing.T) {
	// Tests may run as root, where permission bits stop nothing: a
	// directory under a regular file cannot be created by anyone.
	parent := filepath.Join(t.TempDir(), "a-file")
	must(t, os.WriteFile(parent, []byte("x"), 0o600))
	_, err := NewFactory(Config{Dir: filepath.Join(parent, "recordings")}, Options{})
	if err == nil || !strings.Contains(err.Error(), "recording directory") || !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("NewFactory = %v, want a recording directory error wrapping ENOTDIR", err)
	}

	// The directory disappears after startup and a file takes its place.
	var logs bytes.Buffer
	m := NewMetrics(prometheus.NewRegistry())
	f := newFactory(t, Config{}, Options{Metrics: m, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	must(t, os.RemoveAll(f.Dir()))
	must(t, os.WriteFile(f.Dir(), []byte("x"), 0o600))
	rec, err := f.Open(testInfo("gone"))
	if err == nil || rec != nil || !strings.Contains(err.Error(), "create recording") {
		t.Fatalf("Open = %v, %v; want a create error", rec, err)
	}
	if got := value(t, m.WriteErrors.WithLabelValues("open")); got != 1 {
		t.Errorf("write errors{open} = %v, want 1", got)
	}
	if !strings.Contains(logs.String(), "cannot record session") || !strings.Contains(logs.String(), "session=gone") {
		t.Errorf("log does not say why: %s", logs.String())
	}
	if got := value(t, m.Active); got != 0 {
		t.Errorf("active = %v after a refused open", got)
	}
}

func TestDiskFullAtOpen(t *testing.T) {
	// /dev/full fails every write with ENOSPC, as a full disk does.
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full on this system")
	}
	m := NewMetrics(prometheus.NewRegistry())
	f := newFactory(t, Config{}, Options{Metrics: m})
	f.create = func(string) (file, error) { return os.OpenFile("/dev/full", os.O_WRONLY, 0) }
	_, err := f.Open(testInfo("full"))
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("Open = %v, want ENOSPC", err)
	}
	if got := value(t, m.WriteErrors.WithLabelValues("disk_full")); got != 1 {
		t.Errorf("write errors{disk_full} = %v, want 1", got)
	}
}

// fakeIndex records what the factory tells it and can refuse.
type fakeIndex struct {
	mu      sync.Mutex
	started []Entry
	ended   []Entry
	batches int // EndedAll calls, through batchingIndex
	refuse  error
}

func (x *fakeIndex) state() (ended []Entry, batches int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]Entry(nil), x.ended...), x.batches
}

// batchingIndex is a fakeIndex that is also a BatchIndex.
type batchingIndex struct{ *fakeIndex }

func (x batchingIndex) EndedAll(_ context.Context, es []Entry) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.batches++
	x.ended = append(x.ended, es...)
	return nil
}

func (x *fakeIndex) Started(_ context.Context, e Entry) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.refuse != nil {
		return x.refuse
	}
	x.started = append(x.started, e)
	return nil
}

func (x *fakeIndex) Ended(_ context.Context, e Entry) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.ended = append(x.ended, e)
	return nil
}

func TestWriteFailureIsSticky(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		reason string
	}{
		{"io error", syscall.EIO, "write"},
		{"disk full", syscall.ENOSPC, "disk_full"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			m := NewMetrics(prometheus.NewRegistry())
			idx := &fakeIndex{}
			f := newFactory(t, Config{Rows: RowsAll, BlockSize: MinBlockSize}, Options{Metrics: m, Index: idx, Log: slog.New(slog.NewTextHandler(&logs, nil))})
			ff := &failingFile{n: 1 << 10, err: tc.err}
			f.create = func(string) (file, error) { return ff, nil }
			rec := open(t, f, "failing")
			must(t, rec.Command(&protocols.Command{}, "SELECT"))
			var err error
			for i := 0; err == nil && i < 10000; i++ {
				err = rec.Row([][]byte{[]byte("a row that fills the block")})
			}
			if !errors.Is(err, ErrRecordingFailed) || !errors.Is(err, tc.err) {
				t.Fatalf("Row = %v, want ErrRecordingFailed wrapping %v", err, tc.err)
			}
			if !ff.closed {
				t.Error("file left open after the failure")
			}
			calls := map[string]func() error{
				"Command":  func() error { return rec.Command(&protocols.Command{}, "SELECT 2") },
				"Decision": func() error { return rec.Decision(protocols.Decision{}) },
				"Columns":  func() error { return rec.Columns(nil) },
				"Row":      func() error { return rec.Row(nil) },
				"Result":   func() error { return rec.Result(protocols.Result{}) },
				"Close":    func() error { return rec.Close("client closed") },
			}
			for _, name := range []string{"Command", "Decision", "Columns", "Row", "Result", "Close"} {
				if err := calls[name](); !errors.Is(err, ErrRecordingFailed) {
					t.Errorf("%s after the failure = %v, want ErrRecordingFailed", name, err)
				}
			}
			if got := value(t, m.WriteErrors.WithLabelValues(tc.reason)); got != 1 {
				t.Errorf("write errors{%s} = %v, want exactly 1", tc.reason, got)
			}
			if got := value(t, m.Active); got != 0 {
				t.Errorf("active = %v after Close", got)
			}
			if n := strings.Count(logs.String(), "session recording failed"); n != 1 {
				t.Errorf("%d failure log lines, want 1:\n%s", n, logs.String())
			}
			if len(idx.ended) != 1 || !strings.Contains(idx.ended[0].EndReason, "recording failed: "+tc.reason) {
				t.Errorf("index end = %+v", idx.ended)
			}
		})
	}
}

func TestIndexRefusalRefusesTheSession(t *testing.T) {
	idx := &fakeIndex{refuse: errors.New("database is down")}
	m := NewMetrics(prometheus.NewRegistry())
	f := newFactory(t, Config{}, Options{Index: idx, Metrics: m})
	if _, err := f.Open(testInfo("noindex")); err == nil || !strings.Contains(err.Error(), "database is down") {
		t.Fatalf("Open = %v, want the index error", err)
	}
	if files := listDir(t, f.Dir()); len(files) != 0 {
		t.Errorf("refused session left %v", files)
	}
	if got := value(t, m.WriteErrors.WithLabelValues("index")); got != 1 {
		t.Errorf("write errors{index} = %v", got)
	}
}

func TestIndexEntries(t *testing.T) {
	idx := &fakeIndex{}
	f := newFactory(t, Config{}, Options{Index: idx, Node: "node-a"})
	rec := open(t, f, "indexed")
	sampleSession(t, rec)
	must(t, rec.Close("client closed"))
	f.syncEnded() // the batch that completes the entry
	path := recordingPath(t, f, "indexed")
	st, err := os.Stat(path)
	must(t, err)
	if len(idx.started) != 1 || idx.started[0].Path != path || idx.started[0].Node != "node-a" || idx.started[0].Info.Identity.Name != "alice" {
		t.Fatalf("started = %+v", idx.started)
	}
	e := idx.ended[0]
	if e.Bytes != st.Size() || e.Frames != 14 || e.EndReason != "client closed" || e.End.Before(e.Info.Start) {
		t.Errorf("ended = %+v (file %d bytes)", e, st.Size())
	}
}

func TestMetricsCount(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	f := newFactory(t, Config{Rows: RowsAll}, Options{Metrics: m})
	rec := open(t, f, "metrics")
	if got := value(t, m.Active); got != 1 {
		t.Errorf("active = %v with one open recording", got)
	}
	sampleSession(t, rec)
	must(t, rec.Close("done"))
	st, err := os.Stat(recordingPath(t, f, "metrics"))
	must(t, err)
	if got := value(t, m.Bytes); got != float64(st.Size()) {
		t.Errorf("bytes = %v, file has %d", got, st.Size())
	}
	for typ, want := range map[string]float64{"command": 3, "decision": 3, "columns": 1, "row": 3, "result": 2, "end": 1, "trailer": 1} {
		if got := value(t, m.Frames.WithLabelValues(typ)); got != want {
			t.Errorf("frames{%s} = %v, want %v", typ, got, want)
		}
	}
	mfs, err := reg.Gather()
	must(t, err)
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"airlock_recording_bytes_total", "airlock_recording_frames_total", "airlock_recording_write_errors_total", "airlock_recordings_active"} {
		if !names[n] {
			t.Errorf("%s is not registered", n)
		}
	}
}

// value reads a counter's or gauge's current value.
func value(t testing.TB, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	must(t, c.Write(&m))
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}
