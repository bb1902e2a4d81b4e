package recording

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// sysFile is a file with a descriptor, as createFile makes.
type sysFile interface {
	file
	Fd() uintptr
}

// syncCounter wraps a real file and notes when it is synced and closed.
type syncCounter struct {
	sysFile
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
	return c.sysFile.Sync()
}

func (c *syncCounter) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return c.sysFile.Close()
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
		c := &syncCounter{sysFile: fh.(sysFile), syncErr: syncErr}
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
//
// The index hears of the end only after the fsync, and a batch's entries
// are completed together: with a BatchIndex, in one EndedAll call.
func TestBatchedSync(t *testing.T) {
	for _, batching := range []bool{false, true} {
		t.Run(map[bool]string{false: "index", true: "batch index"}[batching], func(t *testing.T) {
			idx := &fakeIndex{}
			var ix Index = idx
			if batching {
				ix = batchingIndex{idx}
			}
			f, files := countingFactory(t, Config{FlushInterval: 10 * time.Minute}, Options{Index: ix}, nil)
			ids := []string{"batched-a", "batched-b", "batched-c"}
			for _, id := range ids {
				rec, err := f.Open(testInfo(id))
				must(t, err)
				must(t, rec.Command(nil, "SELECT 1"))
				must(t, rec.Close("client terminated"))
			}
			for i, c := range *files {
				if synced, closed := c.state(); synced || closed {
					t.Fatalf("Close synced=%v closed=%v the file itself; want it left to the batch", synced, closed)
				}
				if _, err := VerifyFile(recordingPath(t, f, ids[i]), nil); err != nil {
					t.Fatalf("ended recording does not verify before its sync: %v", err)
				}
			}
			if ended, _ := idx.state(); len(ended) != 0 {
				t.Fatalf("index told of %d ends before the files were synced", len(ended))
			}
			f.syncEnded() // what the flush ticker runs
			for _, c := range *files {
				if synced, closed := c.state(); !synced || !closed {
					t.Fatalf("after the batch: synced=%v closed=%v, want both", synced, closed)
				}
			}
			ended, batches := idx.state()
			if len(ended) != len(ids) {
				t.Fatalf("index ended %d sessions, want %d", len(ended), len(ids))
			}
			for i, e := range ended {
				if e.Info.ID != ids[i] || e.EndReason != "client terminated" || e.Frames != 3 || e.Bytes == 0 || e.End.IsZero() {
					t.Errorf("entry %d = %+v", i, e)
				}
			}
			if want := map[bool]int{false: 0, true: 1}[batching]; batches != want {
				t.Errorf("%d EndedAll calls, want %d", batches, want)
			}
		})
	}
}

// TestBatchedSyncFileSystem checks a large batch: one syncfs of the
// recording file system instead of an fsync per file, and, when syncfs
// fails, an fsync per file after all.
func TestBatchedSyncFileSystem(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(map[bool]string{false: "syncfs", true: "syncfs fails"}[fail], func(t *testing.T) {
			idx := &fakeIndex{}
			f, files := countingFactory(t, Config{FlushInterval: 10 * time.Minute}, Options{Index: batchingIndex{idx}}, nil)
			var calls int
			f.syncFS = func(out file) error {
				calls++
				if _, ok := out.(*syncCounter); !ok {
					t.Errorf("syncfs of %T, want a recording file", out)
				}
				if fail {
					return errors.New("syncfs: i/o error")
				}
				return nil
			}
			for i := range syncFSMin {
				rec, err := f.Open(testInfo(fmt.Sprintf("many-%02d", i)))
				must(t, err)
				must(t, rec.Close("done"))
			}
			f.syncEnded()
			if calls != 1 {
				t.Errorf("%d syncfs calls for a batch of %d, want 1", calls, syncFSMin)
			}
			for i, c := range *files {
				if synced, closed := c.state(); synced != fail || !closed {
					t.Errorf("file %d: fsynced=%v closed=%v, want fsynced=%v and closed", i, synced, closed, fail)
				}
			}
			if ended, batches := idx.state(); len(ended) != syncFSMin || batches != 1 {
				t.Errorf("index: %d entries in %d batches, want %d in 1", len(ended), batches, syncFSMin)
			}
		})
	}
	// A batch one smaller syncs file by file.
	f, files := countingFactory(t, Config{FlushInterval: 10 * time.Minute}, Options{}, nil)
	f.syncFS = func(file) error { t.Error("syncfs for a small batch"); return nil }
	for i := range syncFSMin - 1 {
		rec, err := f.Open(testInfo(fmt.Sprintf("few-%02d", i)))
		must(t, err)
		must(t, rec.Close("done"))
	}
	f.syncEnded()
	for i, c := range *files {
		if synced, closed := c.state(); !synced || !closed {
			t.Errorf("file %d: fsynced=%v closed=%v", i, synced, closed)
		}
	}
}

// TestSyncFileSystem runs the real syncfs on a recording's file system.
func TestSyncFileSystem(t *testing.T) {
	fh, err := createFile(filepath.Join(t.TempDir(), "x.alrec"))
	must(t, err)
	defer fh.Close()
	if err := syncFileSystem(fh); err != nil && runtime.GOOS == "linux" {
		t.Fatalf("syncfs: %v", err)
	}
	if err := syncFileSystem(&failingFile{}); err == nil {
		t.Error("syncfs of a file without a descriptor succeeded")
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
	idx := &fakeIndex{}
	f, files := countingFactory(t, Config{FlushInterval: 10 * time.Minute, Sync: SyncSessionEnd}, Options{Index: batchingIndex{idx}}, nil)
	rec, err := f.Open(testInfo("at-end"))
	must(t, err)
	must(t, rec.Close("done"))
	if synced, closed := (*files)[0].state(); !synced || !closed {
		t.Fatalf("sync: session_end left synced=%v closed=%v", synced, closed)
	}
	if ended, _ := idx.state(); len(ended) != 1 || ended[0].EndReason != "done" {
		t.Fatalf("sync: session_end: index entries %+v at Close, want the session's", ended)
	}
}

// TestBatchedSyncFailure checks that a failed batched fsync is counted and
// logged with its session.
func TestBatchedSyncFailure(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	var logs bytes.Buffer
	idx := &fakeIndex{}
	f, _ := countingFactory(t, Config{FlushInterval: 10 * time.Minute}, Options{Metrics: m, Index: idx, Log: slog.New(slog.NewTextHandler(&logs, nil))}, errors.New("i/o error"))
	rec, err := f.Open(testInfo("sync-fails"))
	must(t, err)
	must(t, rec.Close("done"))
	f.syncEnded()
	if ended, _ := idx.state(); len(ended) != 1 || ended[0].EndReason != "done [recording failed: sync]" {
		t.Errorf("index entries %+v, want one that says the sync failed", ended)
	}
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

// TestCreateFile holds createFile to its contract: a new file, private to
// the owner, written through and closed; never an existing one; errors
// that name the path and keep the system's error (disk-full detection
// depends on it).
func TestCreateFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.alrec")
	fh, err := createFile(path)
	must(t, err)
	if n, err := fh.Write([]byte("recorded")); n != 8 || err != nil {
		t.Fatalf("write = %d, %v", n, err)
	}
	must(t, fh.Sync())
	must(t, fh.Close())
	if b, err := os.ReadFile(path); err != nil || string(b) != "recorded" {
		t.Fatalf("read back %q, %v", b, err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", st.Mode(), err)
	}
	_, err = createFile(path)
	var pe *os.PathError
	if !errors.Is(err, fs.ErrExist) || !errors.As(err, &pe) || pe.Path != path {
		t.Fatalf("second create = %v, want an *os.PathError for %s that is fs.ErrExist", err, path)
	}
	if b, _ := os.ReadFile(path); string(b) != "recorded" {
		t.Fatalf("existing file changed to %q", b)
	}
	if _, err := createFile(filepath.Join(dir, "missing", "s.alrec")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("create in a missing directory = %v, want fs.ErrNotExist", err)
	}
	if full := fmt.Errorf("create: %w", &os.PathError{Op: "open", Path: path, Err: syscall.ENOSPC}); failureReason(full, "x") != reasonDiskFull {
		t.Fatal("a full disk's error is not recognised through the path error")
	}
}
