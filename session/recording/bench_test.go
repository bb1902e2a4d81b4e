package recording

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

// benchResult is the realistic mix: one command with its decision, a result
// set of 20 rows of five typed columns, and its summary. Rows differ from
// one cycle to the next (variants rotate), so compression sees data about
// as repetitive as real results, not the same bytes over and over.
type benchResult struct {
	cmd      protocols.Command
	redacted string
	dec      protocols.Decision
	cols     []protocols.Column
	variants [][][][]byte // variant, row, column
	rows     [][][]byte   // the current variant
	next     int
	res      protocols.Result
	bytes    int64 // payload bytes per cycle, for MB/s
}

func newBenchResult() *benchResult {
	r := &benchResult{
		cmd:      protocols.Command{Kind: "query", Text: "SELECT id, email, name, created_at, balance FROM customers WHERE region = 'eu' ORDER BY id LIMIT 20"},
		redacted: "SELECT id, email, name, created_at, balance FROM customers WHERE region = 'eu' ORDER BY id LIMIT 20",
		dec:      protocols.Decision{Action: protocols.Allow, Risk: protocols.RiskLow, Rules: []string{"read.pii"}},
		cols: []protocols.Column{
			{Name: "id", Table: "public.customers", Type: protocols.TypeNumber},
			{Name: "email", Table: "public.customers", Type: protocols.TypeText},
			{Name: "name", Table: "public.customers", Type: protocols.TypeText},
			{Name: "created_at", Table: "public.customers", Type: protocols.TypeTime},
			{Name: "balance", Table: "public.customers", Type: protocols.TypeNumber},
		},
		res: protocols.Result{Tag: "SELECT 20", Rows: 20, Duration: 1200 * time.Microsecond},
	}
	var total int64
	for v := range 256 {
		var rows [][][]byte
		for i := range 20 {
			k := v*20 + i
			rows = append(rows, [][]byte{
				strconv.AppendInt(nil, int64(100000+k*37), 10),
				fmt.Appendf(nil, "c%d***@example.com", k*7%1000),
				fmt.Appendf(nil, "Customer %c. Name-%d", 'A'+k%26, k*7919%100000),
				fmt.Appendf(nil, "2025-%02d-%02d %02d:%02d:%02d.%06d+00", 1+k%12, 1+k%28, k%24, k%60, (k*13)%60, k*104729%1000000),
				fmt.Appendf(nil, "%d.%02d", k*7919%100000, k%100),
			})
			for _, val := range rows[i] {
				total += int64(len(val))
			}
		}
		r.variants = append(r.variants, rows)
	}
	r.bytes = int64(len(r.redacted)) + total/int64(len(r.variants))
	r.rows = r.variants[0]
	return r
}

func (r *benchResult) record(b *testing.B, rec protocols.Recorder) {
	r.rows = r.variants[r.next%len(r.variants)]
	r.next++
	if err := rec.Command(&r.cmd, r.redacted); err != nil {
		b.Fatal(err)
	}
	if err := rec.Decision(r.dec); err != nil {
		b.Fatal(err)
	}
	if err := rec.Columns(r.cols); err != nil {
		b.Fatal(err)
	}
	for _, row := range r.rows {
		if err := rec.Row(row); err != nil {
			b.Fatal(err)
		}
	}
	if err := rec.Result(r.res); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRecorderMix measures one session recording the mix to a real
// file, compression and hashing included. MB/s is of recorded payload.
// The -s2 variants compress with S2 instead of zstd.
func BenchmarkRecorderMix(b *testing.B) {
	for _, v := range []struct {
		mode  RowsMode
		codec Compression
	}{{RowsAll, CompressZstd}, {RowsFirst, CompressZstd}, {RowsNone, CompressZstd}, {RowsAll, CompressS2}, {RowsFirst, CompressS2}} {
		name := string(v.mode)
		if v.codec != CompressZstd {
			name += "-" + string(v.codec)
		}
		b.Run(name, func(b *testing.B) {
			f := newFactory(b, Config{Rows: v.mode, FirstRows: 10, Compression: v.codec}, Options{Key: testKey})
			rec := open(b, f, "bench")
			r := newBenchResult()
			b.SetBytes(r.bytes)
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				r.record(b, rec)
			}
			b.StopTimer()
			cpu.report(b)
			must(b, rec.Close("done"))
			st, err := os.Stat(recordingPath(b, f, "bench"))
			must(b, err)
			b.ReportMetric(float64(st.Size())/float64(b.N), "file-B/op")
		})
	}
}

// BenchmarkRow is the hot path alone: one 5-column row.
func BenchmarkRow(b *testing.B) {
	f := newFactory(b, Config{Rows: RowsAll}, Options{Key: testKey})
	rec := open(b, f, "row")
	var rows [][][]byte
	var n int64
	for _, v := range newBenchResult().variants {
		rows = append(rows, v...)
		for _, val := range v[0] {
			n += int64(len(val))
		}
	}
	b.SetBytes(n / 256)
	b.ReportAllocs()
	i := 0
	cpu := startCPU()
	for b.Loop() {
		if err := rec.Row(rows[i%len(rows)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.StopTimer()
	cpu.report(b)
	must(b, rec.Close("done"))
}

// BenchmarkRecorderMixParallel runs one session per goroutine, all sharing
// the factory's encoder, pools and ticker.
func BenchmarkRecorderMixParallel(b *testing.B) {
	f := newFactory(b, Config{Rows: RowsAll}, Options{Key: testKey})
	r := newBenchResult()
	var id atomic.Int64
	b.SetBytes(r.bytes)
	b.ReportAllocs()
	cpu := startCPU()
	defer cpu.report(b)
	b.RunParallel(func(pb *testing.PB) {
		rec := open(b, f, fmt.Sprintf("par-%d", id.Add(1)))
		for pb.Next() {
			r.record(b, rec)
		}
		must(b, rec.Close("done"))
	})
}

// BenchmarkVerify reads and checks a signed recording of the mix; MB/s is
// of file bytes.
func BenchmarkVerify(b *testing.B) {
	f := newFactory(b, Config{Rows: RowsAll}, Options{Key: testKey})
	rec := open(b, f, "verify")
	r := newBenchResult()
	for range 2000 {
		r.record(b, rec)
	}
	must(b, rec.Close("done"))
	data, err := os.ReadFile(recordingPath(b, f, "verify"))
	must(b, err)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		rep, err := Verify(bytes.NewReader(data), testKey)
		if err != nil || !rep.OK() {
			b.Fatal(rep, err)
		}
	}
}

// BenchmarkRecorderOLTP records what one pgbench select-only transaction
// leaves in a session: the query, its decision, a one-column result set of
// one row and its summary. It is the shape whose recording cost the
// end-to-end goal judges, so cpu-ns/op is the recording's CPU per
// transaction, compression and hashing included.
func BenchmarkRecorderOLTP(b *testing.B) {
	f := newFactory(b, Config{Rows: RowsFirst, FirstRows: 10}, Options{Key: testKey})
	rec := open(b, f, "oltp")
	cmd := protocols.Command{Kind: "query"}
	dec := protocols.Decision{Action: protocols.Allow, Risk: protocols.RiskNone}
	cols := []protocols.Column{{Name: "abalance", Type: protocols.TypeNumber, Native: 23}}
	texts := make([]string, 4096)
	rows := make([][][]byte, len(texts))
	for i := range texts {
		texts[i] = fmt.Sprintf("SELECT abalance FROM pgbench_accounts WHERE aid = %d;", 1+i*7919%1000000)
		rows[i] = [][]byte{strconv.AppendInt(nil, int64(i*37%5000-2500), 10)}
	}
	b.ReportAllocs()
	cpu := startCPU()
	i := 0
	for b.Loop() {
		k := i % len(texts)
		i++
		// Not must: its b.Helper call would cost more than the recording.
		err := rec.Command(&cmd, texts[k])
		err = errors.Join(err, rec.Decision(dec))
		err = errors.Join(err, rec.Columns(cols))
		err = errors.Join(err, rec.Row(rows[k]))
		err = errors.Join(err, rec.Result(protocols.Result{Tag: "SELECT 1", Rows: 1, Duration: 400 * time.Microsecond}))
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cpu.report(b)
	must(b, rec.Close("done"))
}

// codecBlocks returns the raw (decompressed) blocks of a recording of the
// mix with every row kept, in the default block size.
func codecBlocks(b *testing.B) (blocks [][]byte, total int64) {
	f := newFactory(b, Config{Rows: RowsAll}, Options{Key: testKey})
	rec := open(b, f, "codec")
	r := newBenchResult()
	for range 2000 {
		r.record(b, rec)
	}
	must(b, rec.Close("done"))
	fh, err := os.Open(recordingPath(b, f, "codec"))
	must(b, err)
	defer fh.Close()
	rd, err := NewReader(fh, testKey)
	must(b, err)
	for {
		if _, err := rd.Next(); err != nil {
			break
		}
		if rd.pos >= len(rd.raw) {
			blocks = append(blocks, append([]byte(nil), rd.raw...))
			total += int64(len(rd.raw))
		}
	}
	return blocks, total
}

// BenchmarkCodec is the cost of compressing recorded blocks (the mix, all
// rows kept) with each codec, as the drain goroutine does on the session's
// behalf: MB/s of raw block, and the compression ratio (raw/compressed).
func BenchmarkCodec(b *testing.B) {
	blocks, total := codecBlocks(b)
	for _, c := range []Compression{CompressS2, CompressZstd} {
		b.Run(string(c), func(b *testing.B) {
			enc, err := newBlockEncoder(c)
			must(b, err)
			dst := make([]byte, 0, maxBlockComp)
			var comp int64
			b.SetBytes(total)
			b.ReportAllocs()
			for b.Loop() {
				comp = 0
				for _, raw := range blocks {
					dst = enc(dst[:0], raw)
					comp += int64(len(dst))
				}
			}
			b.ReportMetric(float64(total)/float64(comp), "ratio")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(blocks)), "ns/block")
		})
	}
}

// BenchmarkRecompress rewrites a finished, signed s2 recording of the mix
// (all rows) with zstd: the cost of `airlock sessions recompress` per MB of
// recording, verification of the copy included.
func BenchmarkRecompress(b *testing.B) {
	f := newFactory(b, Config{Rows: RowsAll, Compression: CompressS2}, Options{Key: testKey})
	rec := open(b, f, "recompress")
	r := newBenchResult()
	for range 2000 {
		r.record(b, rec)
	}
	must(b, rec.Close("done"))
	path := recordingPath(b, f, "recompress")
	orig, err := os.ReadFile(path)
	must(b, err)
	b.SetBytes(int64(len(orig)))
	var res Recompressed
	for b.Loop() {
		b.StopTimer()
		must(b, os.WriteFile(path, orig, 0o600))
		b.StartTimer()
		res, err = Recompress(path, CompressZstd, testKey)
		must(b, err)
	}
	b.ReportMetric(float64(res.Before)/float64(res.After), "ratio")
}
