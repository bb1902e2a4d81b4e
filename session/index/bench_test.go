package index

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/approvals"
	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session"
)

// BenchmarkSessionIndexing measures what one session costs the index: its
// start and its end, on the store the gateway uses (SQLite opened as the
// approvals store opens it), from parallel sessions. Starts are registered
// one by one, as sessions open; ends are completed in batches, as the
// recording factory completes them after each batched fsync.
func BenchmarkSessionIndexing(b *testing.B) {
	ctx := context.Background()
	st, err := approvals.OpenStore(ctx, approvals.StoreConfig{Driver: "sqlite", DSN: protocols.Secret(filepath.Join(b.TempDir(), "airlock.db"))}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	s, err := Open(ctx, st.DB(), string(st.Dialect()), Options{Node: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		var ended []session.Entry
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
