package recording

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

// TestConcurrentCommandsAndRows records commands from one goroutine and
// result sets from another, as an engine does, while the ticker flushes
// underneath; run it with -race.
func TestConcurrentCommandsAndRows(t *testing.T) {
	f := newFactory(t, Config{Rows: RowsAll, BlockSize: MinBlockSize, FlushInterval: 10 * time.Millisecond}, Options{Key: testKey})
	rec := open(t, f, "concurrent")
	const commands, results, rows = 300, 200, 20
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range commands {
			if err := rec.Command(&protocols.Command{Kind: "query"}, fmt.Sprintf("SELECT %d", i)); err != nil {
				t.Error(err)
				return
			}
			if err := rec.Decision(protocols.Decision{Action: protocols.Allow}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Go(func() {
		for i := range results {
			if err := rec.Columns([]protocols.Column{{Name: "n"}, {Name: "s"}}); err != nil {
				t.Error(err)
				return
			}
			for j := range rows {
				if err := rec.Row([][]byte{fmt.Appendf(nil, "%d", j), fmt.Appendf(nil, "result %d", i)}); err != nil {
					t.Error(err)
					return
				}
			}
			if err := rec.Result(protocols.Result{Rows: rows}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	// A third goroutine forces flushes as the ticker would.
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				f.flushAll(nil)
				runtime.Gosched()
			}
		}
	})
	time.Sleep(time.Millisecond)
	close(stop)
	wg.Wait()
	must(t, rec.Close("done"))

	res := readFile(t, recordingPath(t, f, "concurrent"), testKey)
	if res.err != io.EOF {
		t.Fatal(res.err)
	}
	counts := map[FrameType]int{}
	for _, fr := range res.frames {
		counts[fr.Type]++
	}
	if counts[FrameCommand] != commands || counts[FrameDecision] != commands || counts[FrameColumns] != results ||
		counts[FrameRow] != results*rows || counts[FrameResult] != results {
		t.Errorf("frame counts %v", counts)
	}
}

func TestTickerFlushesPendingFrames(t *testing.T) {
	f := newFactory(t, Config{FlushInterval: 20 * time.Millisecond}, Options{Key: testKey})
	rec := open(t, f, "ticker")
	must(t, rec.Command(&protocols.Command{Kind: "query"}, "SELECT 1"))
	path := recordingPath(t, f, "ticker")
	// Waits for the ticker, without asserting how fast it is.
	deadline := time.Now().Add(10 * time.Second)
	for {
		rep, err := VerifyFile(path, testKey)
		must(t, err)
		if rep.Sealed == 2 {
			if rep.Status != Unfinished {
				t.Errorf("open recording reported %v", rep)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pending command not flushed by the ticker: %v", rep)
		}
		time.Sleep(5 * time.Millisecond)
	}
	must(t, rec.Close("done"))
	if rep, _ := VerifyFile(path, testKey); !rep.OK() || rep.Blocks != 2 {
		t.Errorf("after close: %v", rep)
	}
}

func TestFactoryCloseFlushes(t *testing.T) {
	f := newFactory(t, Config{FlushInterval: time.Minute}, Options{})
	rec := open(t, f, "shutdown")
	must(t, rec.Command(&protocols.Command{}, "SELECT 1"))
	must(t, f.Close())
	rep, err := VerifyFile(recordingPath(t, f, "shutdown"), nil)
	must(t, err)
	if rep.Status != Unfinished || rep.Sealed != 2 {
		t.Errorf("after factory close: %v", rep)
	}
	if _, err := f.Open(testInfo("late")); err != ErrClosed {
		t.Errorf("Open after Close = %v", err)
	}
	must(t, rec.Close("done"))
}

// TestCrashLeavesVerifiablePrefix copies the file while a session is still
// writing, as a crash would leave it, and checks the whole blocks verify.
func TestCrashLeavesVerifiablePrefix(t *testing.T) {
	f := newFactory(t, Config{Rows: RowsAll, BlockSize: MinBlockSize, FlushInterval: time.Minute}, Options{Key: testKey})
	rec := open(t, f, "crash")
	must(t, rec.Columns([]protocols.Column{{Name: "v"}}))
	for i := range 1000 {
		must(t, rec.Row([][]byte{fmt.Appendf(nil, "value %d", i)}))
	}
	// What the kernel holds once the queued blocks are written, while the
	// session goes on.
	rec.(*recorder).waitDrained()
	snapshot, err := os.ReadFile(recordingPath(t, f, "crash"))
	must(t, err)
	for i := range 100 {
		must(t, rec.Row([][]byte{fmt.Appendf(nil, "later value %d", i)}))
	}
	must(t, rec.Close("done"))
	final, err := os.ReadFile(recordingPath(t, f, "crash"))
	must(t, err)
	offs := blockOffsets(t, final)
	for _, cut := range []int{len(snapshot), len(snapshot) - 7, offs[len(offs)/2] + 3} {
		rep := verifyBytes(t, final[:cut], testKey)
		if rep.Status != Unfinished || rep.Sealed == 0 || rep.Frames != rep.Sealed {
			t.Errorf("cut at %d: %v", cut, rep)
		}
	}
}

// TestIdleSessionsAreCheap opens many sessions, records a little in each,
// lets the ticker's flush write it, and measures what stays on the heap.
func TestIdleSessionsAreCheap(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1000 files")
	}
	f := newFactory(t, Config{}, Options{Key: testKey})
	const n = 1000
	recs := make([]protocols.Recorder, n)
	// Warm up: the shared encoder's state is allocated once, at first use.
	warm := open(t, f, "warm-up")
	sampleSession(t, warm)
	must(t, warm.Close("done"))
	runtime.GC()
	runtime.GC() // twice: the first moves pooled buffers to the victim cache
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range recs {
		recs[i] = open(t, f, fmt.Sprintf("idle-%d", i))
		must(t, recs[i].Command(&protocols.Command{Kind: "query"}, "SELECT 1"))
		must(t, recs[i].Decision(protocols.Decision{Action: protocols.Allow}))
	}
	for _, r := range f.flushAll(nil) {
		r.waitDrained()
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	perSession := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	t.Logf("%d bytes of heap per idle session", perSession)
	if perSession > 4<<10 {
		t.Errorf("an idle session holds %d bytes of heap, want under 4 KiB", perSession)
	}
	for _, r := range recs {
		must(t, r.Close("done"))
	}
}
