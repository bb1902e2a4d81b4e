package session

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// syncCounter wraps a real file and notes when it is synced and closed.
type syncCounter struct {
	*os.File
	mu      sync.Mutex
	synced  bool
	closed  bool
	syncErr error
}

func (c *syncCounter) Sync() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.synced = true
	if c.syncErr != nil {
		return c.syncErr
	}
	return c.File.Sync()
}

func (c *syncCounter) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return c.File.Close()
}

func (c *syncCounter) state() (synced, closed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.synced, c.closed
}

func countingFactory(t *testing.T, cfg Config, o Options, syncErr error) (*Factory, *[]*syncCounter) {
	t.Helper()
	f := newFactory(t, cfg, o)
	var files []*syncCounter
	var mu sync.Mutex
	f.create = func(path string) (file, error) {
		fh, err := createFile(path)
		if err != nil {
			return nil, err
		}
		c := &syncCounter{File: fh.(*os.File), syncErr: syncErr}
		mu.Lock()
		files = append(files, c)
		mu.Unlock()
		return c, nil
	}
	return f, &files
}

// TestBatchedSync checks the default: an ended session's file is complete
// and verifies at once, and is fsynced and closed by the next flush tick,
// not by the session's Close.
func TestBatchedSync(t *testing.T) {
	f, files := countingFactory(t, Config{FlushInterval: 10 * time.Minute}, Options{}, nil)
	rec, err := f.Open(testInfo("batched"))
	must(t, err)
	must(t, rec.Command(nil, "SELECT 1"))
	must(t, rec.Close("client terminated"))
	c := (*files)[0]
	if synced, closed := c.state(); synced || closed {
		t.Fatalf("Close synced=%v closed=%v the file itself; want it left to the batch", synced, closed)
	}
	if _, err := VerifyFile(recordingPath(t, f, "batched"), nil); err != nil {
		t.Fatalf("ended recording does not verify before its sync: %v", err)
	}
	f.syncEnded() // what the flush ticker runs
	if synced, closed := c.state(); !synced || !closed {
		t.Fatalf("after the batch: synced=%v closed=%v, want both", synced, closed)
	}
}

// TestBatchedSyncAtFactoryClose checks that closing the factory syncs what
// is queued, and that sessions ending afterwards sync their own files.
func TestBatchedSyncAtFactoryClose(t *testing.T) {
	f, files := countingFactory(t, Config{FlushInterval: 10 * time.Minute}, Options{}, nil)
	a, err := f.Open(testInfo("before"))
	must(t, err)
	b, err := f.Open(testInfo("after"))
	must(t, err)
	must(t, a.Close("done"))
	must(t, f.Close())
	if synced, closed := (*files)[0].state(); !synced || !closed {
		t.Fatalf("queued file at factory close: synced=%v closed=%v", synced, closed)
	}
	must(t, b.Close("done"))
	if synced, closed := (*files)[1].state(); !synced || !closed {
		t.Fatalf("file of a session ending after factory close: synced=%v closed=%v", synced, closed)
	}
}

func TestSessionEndSync(t *testing.T) {
	f, files := countingFactory(t, Config{FlushInterval: 10 * time.Minute, Sync: SyncSessionEnd}, Options{}, nil)
	rec, err := f.Open(testInfo("at-end"))
	must(t, err)
	must(t, rec.Close("done"))
	if synced, closed := (*files)[0].state(); !synced || !closed {
		t.Fatalf("sync: session_end left synced=%v closed=%v", synced, closed)
	}
}

// TestBatchedSyncFailure checks that a failed batched fsync is counted and
// logged with its session.
func TestBatchedSyncFailure(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	var logs bytes.Buffer
	f, _ := countingFactory(t, Config{FlushInterval: 10 * time.Minute}, Options{Metrics: m, Log: slog.New(slog.NewTextHandler(&logs, nil))}, errors.New("i/o error"))
	rec, err := f.Open(testInfo("sync-fails"))
	must(t, err)
	must(t, rec.Close("done"))
	f.syncEnded()
	if got := value(t, m.WriteErrors.WithLabelValues(reasonSync)); got != 1 {
		t.Errorf("write errors{sync} = %v, want 1", got)
	}
	if !strings.Contains(logs.String(), "session=sync-fails") {
		t.Errorf("log does not name the session: %s", logs.String())
	}
}

func TestSyncModeValidation(t *testing.T) {
	err := Config{Dir: "x", Sync: "sometimes"}.Validate("recording")
	if err == nil || !strings.Contains(err.Error(), `recording.sync: unknown mode "sometimes"`) {
		t.Fatalf("Validate = %v", err)
	}
	if got := (Config{}).WithDefaults().Sync; got != SyncBatched {
		t.Fatalf("default sync = %q", got)
	}
}
