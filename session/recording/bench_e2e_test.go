package recording

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/testenv"
)

// BenchmarkEndToEndPostgres runs the mix's query against the local
// PostgreSQL and reads its 20 rows, without and with recording them, so the
// recording's share of a real round trip can be read off as a ratio of the
// two. A proxy adds work of its own per row, so through Airlock the share
// is smaller still.
func BenchmarkEndToEndPostgres(b *testing.B) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testenv.PostgresURL(b, "postgres"))
	if err != nil {
		b.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	const query = `SELECT g AS id, 'c' || (g % 10) || '***@example.com' AS email, 'Customer ' || g AS name,
		timestamptz '2025-01-01' + g * interval '1 hour' AS created_at, (g * 7919 % 100000)::numeric / 100 AS balance
		FROM generate_series(1, 20) g`
	r := newBenchResult()
	run := func(b *testing.B, rec protocols.Recorder) {
		b.ReportAllocs()
		cpu := startCPU()
		defer cpu.report(b)
		for b.Loop() {
			start := time.Now()
			if rec != nil {
				must(b, rec.Command(&r.cmd, query))
				must(b, rec.Decision(r.dec))
			}
			rows, err := conn.Query(ctx, query, pgx.QueryExecModeSimpleProtocol)
			must(b, err)
			if rec != nil {
				must(b, rec.Columns(r.cols))
			}
			n := 0
			for rows.Next() {
				n++
				if rec != nil {
					must(b, rec.Row(rows.RawValues()))
				}
			}
			must(b, rows.Err())
			if rec != nil {
				must(b, rec.Result(protocols.Result{Tag: rows.CommandTag().String(), Rows: int64(n), Duration: time.Since(start)}))
			}
		}
	}
	b.Run("plain", func(b *testing.B) { run(b, nil) })
	b.Run("recorded", func(b *testing.B) {
		f := newFactory(b, Config{Rows: RowsAll}, Options{Key: testKey})
		rec := open(b, f, "e2e")
		run(b, rec)
		b.StopTimer()
		must(b, rec.Close("done"))
	})
}
