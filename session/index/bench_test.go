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
)

// BenchmarkSessionIndexing measures what one session costs the index: its
// start and its end, on the store the gateway uses (SQLite opened as the
// approvals store opens it), from parallel sessions.
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
		for pb.Next() {
			id := fmt.Sprintf("bench-%d", n.Add(1))
			e := entry(id, "alice", "c", time.Now(), "/r/"+id+".alrec")
			if err := s.Started(ctx, e); err != nil {
				b.Error(err)
				return
			}
			e.End = time.Now()
			if err := s.Ended(ctx, e); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
