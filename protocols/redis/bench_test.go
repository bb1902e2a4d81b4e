//go:build unix

package redis

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/approvals/policy"
	"github.com/airlock-gw/airlock/masking"
	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/redis/resp"
	"github.com/airlock-gw/airlock/session"
	"github.com/airlock-gw/airlock/session/recording"
	"github.com/airlock-gw/airlock/sqlrisk"
)

// benchGateway is a gateway as airlock-full runs it: sqlrisk's classifier
// with its cache, a policy, e-mail masking and every session recorded in
// dir.
func benchGateway(b *testing.B, dir string) *session.Gateway {
	b.Helper()
	pol, err := policy.New(policy.Config{Rules: map[string]string{"admin.config": "deny"}}, policy.Config{})
	if err != nil {
		b.Fatal(err)
	}
	src, err := masking.New(masking.Config{Detect: []masking.DetectRule{{Entity: "email", Strategy: masking.Redact}}}, "cache", nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	conn := &protocols.Connection{Name: "cache", Protocol: protocols.Redis, Allow: protocols.Principals{"dev"},
		DefaultIdentity: "dev", Policy: pol, Masking: src,
		Upstream: &Upstream{Address: redisAddr(), Database: testDatabase, TLS: UpstreamTLS{Mode: "disable"}}}
	recs, err := recording.NewFactory(recording.Config{Dir: dir}, recording.Options{Node: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = recs.Close() })
	g, err := session.New(session.Options{Auth: testAuth{"dev": "dev-token"},
		Connections: map[string]*protocols.Connection{"cache": conn}, Classifier: sqlrisk.New(sqlrisk.Config{}),
		Recorders: recs, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	return g
}

// BenchmarkPipeline measures one command through a full-inspection session
// (classify, policy, record, mask, relay) against the local Redis, as
// redis-benchmark drives it: SET and GET of a 3-byte value, one at a time
// or sixteen to a pipeline. One op is one command; the time includes the
// client's and Redis's share.
func BenchmarkPipeline(b *testing.B) {
	needRedis(b)
	key := uniqueKey("bench:pipeline")
	defer cleanupKeys(b, key)
	_, addr := serveEngine(b, benchGateway(b, b.TempDir()), Settings{})
	for _, depth := range []int{1, 16} {
		for _, cmd := range []string{"SET", "GET"} {
			b.Run(cmd+"-P"+strconv.Itoa(depth), func(b *testing.B) { benchPipeline(b, addr, key, cmd, depth) })
		}
	}
}

func benchPipeline(b *testing.B, addr, key, cmd string, depth int) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Minute))
	if _, err := conn.Write(resp.AppendCommand(nil, "AUTH", "dev", "dev-token")); err != nil {
		b.Fatal(err)
	}
	ok := make([]byte, 5)
	if _, err := io.ReadFull(conn, ok); err != nil || string(ok) != "+OK\r\n" {
		b.Fatalf("AUTH: %q %v", ok, err)
	}
	args := []string{cmd, key}
	reply := "+OK\r\n"
	if cmd == "SET" {
		args = append(args, "xxx")
	} else {
		reply = "$3\r\nxxx\r\n"
		if _, err := conn.Write(resp.AppendCommand(nil, "SET", key, "xxx")); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(conn, ok); err != nil {
			b.Fatal(err)
		}
	}
	var out, want []byte
	for range depth {
		out = resp.AppendCommand(out, args...)
		want = append(want, reply...)
	}
	got := make([]byte, len(want))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU(b)
	for i := 0; i < b.N; i += depth {
		if _, err := conn.Write(out); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(conn, got); err != nil {
			b.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			b.Fatalf("replies: %q", got)
		}
	}
	// The wall time per op swings with the machine's load; the process's
	// CPU time per op (the engine's and this client's, Redis's not) swings
	// less.
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// processCPU is the CPU time this process has used, user and system.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
