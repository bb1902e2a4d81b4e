package index

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session/recording"
	"github.com/airlock-gw/airlock/session/sqldb"
)

// BenchmarkSessionIndexing measures what one session costs the index: its
// start and its end, on the store the gateway uses (SQLite opened as the
// approvals store opens it), from parallel sessions. Starts are registered
// one by one, as sessions open; ends are completed in batches, as the
// recording factory completes them after each batched fsync.
func BenchmarkSessionIndexing(b *testing.B) {
	ctx := context.Background()
	s := benchStore(b, b.TempDir())
	b.ReportAllocs()
	b.ResetTimer()
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		var ended []recording.Entry
		end := func() bool {
			err := s.EndedAll(ctx, ended)
			ended = ended[:0]
			if err != nil {
				b.Error(err)
			}
			return err == nil
		}
		for pb.Next() {
			id := fmt.Sprintf("bench-%d", n.Add(1))
			e := entry(id, "alice", "c", time.Now(), "/r/"+id+".alrec")
			if err := s.Started(ctx, e); err != nil {
				b.Error(err)
				return
			}
			e.End = time.Now()
			if ended = append(ended, e); len(ended) == 64 && !end() {
				return
			}
		}
		end()
	})
}

// BenchmarkShortSession measures what recording one short session costs,
// as a client that connects per request causes: its file and header, its
// index entry, one select-only transaction, its end, and its share of the
// batched sync and index update that the factory's ticker runs (here every
// 20 ms). cpu-ns/op counts every thread of the process. Files and index
// are in memory (memDir): the figure is Airlock's work, not the disk's.
func BenchmarkShortSession(b *testing.B) {
	// Deferred starts wait up to twice the flush interval, as they do with
	// the defaults (deferWindow, Config.FlushInterval).
	defer func(w time.Duration) { deferWindow = w }(deferWindow)
	deferWindow = 40 * time.Millisecond
	dir := memDir(b)
	s := benchStore(b, dir)
	f, err := recording.NewFactory(recording.Config{Dir: filepath.Join(dir, "recordings"), FlushInterval: 20 * time.Millisecond}, recording.Options{Index: s, Node: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	cmd := protocols.Command{Kind: "query"}
	cols := []protocols.Column{{Name: "abalance", Type: protocols.TypeNumber, Native: 23}}
	var n atomic.Int64
	b.ReportAllocs()
	cpu := cpuNow()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			rec, err := f.Open(protocols.SessionInfo{ID: fmt.Sprintf("short-%d", i), Protocol: protocols.Postgres,
				Connection: "c", Identity: protocols.Identity{Name: "alice"}, ClientAddr: "127.0.0.1:5000", Start: time.Now()})
			if err != nil {
				b.Error(err)
				return
			}
			err = errors.Join(rec.Command(&cmd, fmt.Sprintf("SELECT abalance FROM pgbench_accounts WHERE aid = %d;", i)),
				rec.Decision(protocols.Decision{Action: protocols.Allow, Risk: protocols.RiskNone}),
				rec.Columns(cols), rec.Row([][]byte{[]byte("0")}),
				rec.Result(protocols.Result{Tag: "SELECT 1", Rows: 1, Duration: 300 * time.Microsecond}),
				rec.Close("client terminated"))
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuNow()-cpu)/float64(b.N), "cpu-ns/op")
}

// benchStore opens the index on a new SQLite database in dir, the way the
// gateway opens its store.
func benchStore(b *testing.B, dir string) *Store {
	ctx := context.Background()
	db, err := sqldb.Open(ctx, sqldb.Config{Driver: "sqlite", DSN: protocols.Secret(filepath.Join(dir, "airlock.db"))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	s, err := Open(ctx, db.DB, string(db.Dialect), Options{Node: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// memDir is a temporary directory in memory (/dev/shm) where the machine
// has one, else on disk. Short sessions create and delete thousands of
// files, and on a file system without a journal (ext4 here) creating a file
// near many recently deleted ones costs up to a millisecond of kernel CPU
// for a while: on disk, this benchmark measured the previous run's deletions
// more than Airlock's work.
func memDir(b *testing.B) string {
	dir, err := os.MkdirTemp("/dev/shm", "airlock-bench-")
	if err != nil {
		return b.TempDir()
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// cpuNow is the process's CPU time, all threads.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
