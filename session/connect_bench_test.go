package session

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session/identity"
	"github.com/airlock-gw/airlock/session/recording"
)

// BenchmarkConnect measures what a client that connects per transaction
// costs the session flow before and after its one command: admission (a
// static token checked against its stored hash, the connection's allow
// list, a slot of the session limits), Start (the session id, the
// recording's file, header and first space reservation, the masker), one
// checked and recorded command and Close (the recording's end, trailer and
// last block; the batched sync of the flush ticker, here every 20 ms,
// counts in cpu-ns/op, which covers every thread of the process). The
// recordings are signed, in memory (/dev/shm) where the machine has it:
// the figure is Airlock's work, not the disk's. Without an index: the
// session index has its own benchmark (session/index
// BenchmarkShortSession).
func BenchmarkConnect(b *testing.B) {
	dir := connectBenchDir(b)
	key := []byte("0123456789abcdef0123456789abcdef")
	recs, err := recording.NewFactory(recording.Config{Dir: dir, FlushInterval: 20 * time.Millisecond},
		recording.Options{Key: key, Node: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer recs.Close()
	auth, err := identity.New(identity.Config{Identities: []identity.Static{
		{Name: "alice", TokenSHA256: identity.HashToken("alice-token")}}}, identity.Options{})
	if err != nil {
		b.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	conns := map[string]*protocols.Connection{
		"main": {Name: "main", Protocol: protocols.Postgres, Allow: protocols.Principals{"alice"}, Policy: byRisk{}},
	}
	g, err := New(Options{Auth: auth, Connections: conns, Classifier: markers{}, Recorders: recs,
		Metrics: NewMetrics(reg), Limiter: NewLimiter(Limits{Sessions: 1000}, reg)})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	caller := Caller{Protocol: protocols.Postgres, User: "alice", Secret: "alice-token", Connection: "main",
		Peer: "127.0.0.1:5555", Local: true}
	cmd := protocols.Command{Kind: "query", Text: "SELECT abalance FROM pgbench_accounts WHERE aid = 1"}
	b.ReportAllocs()
	cpu := processCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := g.Admit(ctx, caller)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Start(); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Check(ctx, &cmd); err != nil {
			b.Fatal(err)
		}
		s.Close("client terminated")
	}
	b.StopTimer()
	time.Sleep(40 * time.Millisecond) // the last batched sync
	b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
}

// connectBenchDir is a new recording directory in memory where the
// machine has /dev/shm, else on disk.
func connectBenchDir(b *testing.B) string {
	dir, err := os.MkdirTemp("/dev/shm", "airlock-connect-")
	if err != nil {
		return filepath.Join(b.TempDir(), "recordings")
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// processCPU is the process's CPU time, all threads.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
