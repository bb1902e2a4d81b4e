package postgres

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/airlock-gw/airlock/approvals/policy"
	"github.com/airlock-gw/airlock/masking"
	"github.com/airlock-gw/airlock/masking/pgcodec"
	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/transport"
	"github.com/airlock-gw/airlock/session"
	"github.com/airlock-gw/airlock/session/recording"
	"github.com/airlock-gw/airlock/sqlrisk"
)

// inspectedSession is a session with the quickstart's inspection
// (airlock.yaml): sqlrisk's classifier, the default policy with reach.*
// denied, the quickstart's detectors and column rules, and a recording
// in a temporary directory keeping the first 10 rows of each result. With
// plain set it is the same session in the decode mode: no policy, no
// masking, no recording. Its sockets are in memory.
func inspectedSession(b testing.TB, plain bool) *relay {
	reg := prometheus.NewRegistry()
	pol, err := policy.New(policy.Config{Rules: map[string]string{"reach.*": "deny"}}, policy.Config{})
	if err != nil {
		b.Fatal(err)
	}
	mask, err := masking.New(masking.Config{
		Detect: []masking.DetectRule{{Entity: "email", Strategy: masking.Partial},
			{Entity: "payment_card", Strategy: masking.Partial}, {Entity: "secrets", Strategy: masking.Redact}},
		Columns: []masking.ColumnRule{{Name: "*password*", Strategy: masking.Null}, {Name: "*_token", Strategy: masking.Redact}},
	}, "bench", masking.NewMetrics(reg), pgcodec.Dialect{})
	if err != nil {
		b.Fatal(err)
	}
	rec, err := recording.NewFactory(recording.Config{Dir: b.TempDir(), Rows: recording.RowsFirst, FirstRows: 10},
		recording.Options{Metrics: recording.NewMetrics(reg)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = rec.Close() })
	c := &protocols.Connection{Name: "bench", Protocol: protocols.Postgres, Policy: pol, Masking: mask, Allow: protocols.Principals{"*"}}
	gw, err := session.New(session.Options{Auth: testAuth{"alice": "t"}, Classifier: sqlrisk.New(sqlrisk.Config{}),
		Connections: map[string]*protocols.Connection{"bench": c}, Recorders: rec, Metrics: session.NewMetrics(reg)})
	if err != nil {
		b.Fatal(err)
	}
	if plain {
		gw = gw.WithoutInspection()
	}
	flow, err := gw.Admit(context.Background(), session.Caller{Protocol: protocols.Postgres, User: "alice", Secret: "t", Connection: "bench", Local: true})
	if err != nil {
		b.Fatal(err)
	}
	if err := flow.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { flow.Close("end of benchmark") })
	e := New()
	e.gateway, e.log = gw, slog.New(slog.DiscardHandler)
	s := &relay{engine: e, flow: flow, clientOut: transport.NewWriter(io.Discard),
		up: &upstream{w: bufio.NewWriterSize(io.Discard, 16<<10)}, log: e.log, ended: make(chan struct{})}
	s.results = flow.Results(s)
	return s
}

// feed passes a stream of messages to handle, one frame at a time.
func feed(b testing.TB, stream []byte, handle func(typ byte, frame, body []byte) error) {
	for len(stream) > 0 {
		n := 1 + int(uint32(stream[1])<<24|uint32(stream[2])<<16|uint32(stream[3])<<8|uint32(stream[4]))
		if err := handle(stream[0], stream[:n], stream[5:n]); err != nil {
			b.Fatal(err)
		}
		stream = stream[n:]
	}
}

func encode(b testing.TB, msgs ...interface{ Encode([]byte) ([]byte, error) }) []byte {
	var out []byte
	for _, m := range msgs {
		var err error
		if out, err = m.Encode(out); err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// BenchmarkInspectPrepared is one transaction of pgbench -S -M prepared
// through the engine without the network: the client's Bind, Describe,
// Execute, Sync of a prepared SELECT, then the server's BindComplete,
// RowDescription, one DataRow, CommandComplete and ReadyForQuery. "full"
// inspects as the quickstart does (policy, masking with its detectors,
// recording); "decode" is the same engine without inspection, so the
// difference between the two is what inspection costs per command.
func BenchmarkInspectPrepared(b *testing.B) {
	for _, mode := range []string{"decode", "full"} {
		b.Run(mode, func(b *testing.B) { benchInspectPrepared(b, mode == "decode") })
	}
}

func benchInspectPrepared(b *testing.B, plain bool) {
	cycle := preparedCycle(b, inspectedSession(b, plain))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuNow()
	for range b.N {
		cycle()
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuNow()-cpu)/float64(b.N), "cpu-ns/op")
}

// TestInspectPreparedAllocs: a cached prepared statement's run with full
// inspection allocates nothing, in the client's messages or the result.
func TestInspectPreparedAllocs(t *testing.T) {
	cycle := preparedCycle(t, inspectedSession(t, false))
	if n := testing.AllocsPerRun(2000, cycle); n > 0 {
		t.Fatalf("%v allocations per prepared transaction, want 0", n)
	}
}

// preparedCycle prepares a statement in s and returns one run of it: the
// client's Bind, Describe, Execute, Sync and the server's answer.
func preparedCycle(b testing.TB, s *relay) func() {
	ctx := context.Background()
	client := func(typ byte, frame, body []byte) error { return s.clientMessage(ctx, typ, frame, body) }
	feed(b, encode(b, &pgproto3.Parse{Name: "P0_1", Query: "SELECT abalance FROM pgbench_accounts WHERE aid = $1"}), client)
	feed(b, encode(b, &pgproto3.ParseComplete{}), s.upstreamMessage)
	request := encode(b, &pgproto3.Bind{PreparedStatement: "P0_1", Parameters: [][]byte{[]byte("4242")}, ResultFormatCodes: []int16{0}},
		&pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{})
	reply := encode(b, &pgproto3.BindComplete{},
		&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{Name: []byte("abalance"), TableOID: 16397, TableAttributeNumber: 3, DataTypeOID: 23, DataTypeSize: 4, TypeModifier: -1}}},
		&pgproto3.DataRow{Values: [][]byte{[]byte("-2811")}},
		&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	return func() {
		// Each side's messages come in one read, as the loops see them.
		s.clientAt = time.Time{}
		feed(b, request, client)
		s.upstreamAt = time.Time{}
		feed(b, reply, s.upstreamMessage)
		if !s.pending.empty() {
			b.Fatal("replies left pending")
		}
	}
}

// cpuNow is the process's CPU time (user and system, all threads, GC
// included): on a shared machine wall time per op swings with the load,
// CPU time per op much less.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
