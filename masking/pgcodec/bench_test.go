package pgcodec

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/masking"
	"github.com/airlock-gw/airlock/protocols"
)

var pgFormCols = []protocols.Column{
	{Name: "tags", Type: protocols.TypeArray},
	{Name: "contacts", Type: protocols.TypeArray},
	{Name: "scan", Type: protocols.TypeBytes},
	{Name: "codes", Type: protocols.TypeArray, Binary: true},
}

var (
	firstNames = []string{"Jane", "John", "Amélie", "Søren", "Priya", "Wei", "Carlos", "Fatima", "Olga", "Kenji"}
	lastNames  = []string{"Smith", "Okafor", "Müller", "García", "Nakamura", "O'Brien", "Kowalski", "Dubois"}
	products   = []string{"Oak dining table", "Walnut bookshelf, 5 shelves", "Linen sofa (3-seat)", "LED desk lamp v2.1", "Ceramic mug set x4"}
	sentences  = []string{
		"A sturdy oak dining table with six matching chairs, finished in a warm walnut stain.",
		"Seats 6-8 people comfortably; extends to 240 cm with the two included leaves.",
		"Ships flat-packed in 3 boxes (total 48.5 kg). Assembly takes about 45 minutes.",
		"Customer asked for delivery after 5pm on weekdays; gate code is on file.",
		"Replacement part #A-1042 sent on 2024-03-18, tracking updated in the portal.",
		"Version 2.4.1 of the firmware fixes the flicker reported in ticket 88213.",
	}
	statuses = []string{"pending", "paid", "shipped", "delivered", "refunded"}
)

// pgFormRow is a row of PostgreSQL's own text forms: a text array without
// PII, one holding an e-mail address, a bytea in hex output and a binary
// text[].
func pgFormRow(r *rand.Rand) [][]byte {
	pick := func(xs []string) string { return xs[r.IntN(len(xs))] }
	return [][]byte{
		fmt.Appendf(nil, `{oak,%s,"dining table",sale,"%d seats"}`, strings.ToLower(pick(statuses)), 4+r.IntN(6)),
		fmt.Appendf(nil, `{"%s %s",%s.%s@example.com}`, pick(firstNames), pick(lastNames), strings.ToLower(pick(firstNames[:2])), strings.ToLower(pick(lastNames[:2]))),
		fmt.Appendf(nil, `\x%x`, pick(sentences)),
		[]byte(binArrayOf("ORD-2024", pick(statuses), pick(products))),
	}
}

// BenchmarkMaskRowPostgresForms is rows of array literals, bytea and binary
// arrays with every detector on (the core's suggested production shape).
func BenchmarkMaskRowPostgresForms(b *testing.B) {
	m := newMasker(b, masking.Config{HashKey: "0123456789abcdef0123", Detect: []masking.DetectRule{
		{Entity: "email", Strategy: masking.Partial},
		{Entity: "payment_card", Strategy: masking.Partial},
		{Entity: "pii", Strategy: masking.Redact},
		{Entity: "secrets", Strategy: masking.Redact},
	}})
	r := rand.New(rand.NewPCG(1, 2))
	rows := make([][][]byte, 256)
	n := 0
	for i := range rows {
		rows[i] = pgFormRow(r)
		for _, v := range rows[i] {
			n += len(v)
		}
	}
	rm := m.Plan(pgFormCols)
	work := make([][]byte, len(pgFormCols))
	perRow := int64(n / len(rows))
	b.SetBytes(perRow)
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuTime()
	for i := 0; i < b.N; i++ {
		copy(work, rows[i%len(rows)])
		rm.MaskRow(work)
	}
	reportCPU(b, start, perRow)
}

// reportCPU adds MB/s per CPU-second: throughput per core, independent of
// how busy the rest of the machine is.
func reportCPU(b *testing.B, start time.Duration, perOp int64) {
	if cpu := cpuTime() - start; cpu > 0 {
		b.ReportMetric(float64(perOp)*float64(b.N)/cpu.Seconds()/1e6, "MB/cpu-s")
	}
}

// BenchmarkCopyLine masks COPY text lines without PII.
func BenchmarkCopyLine(b *testing.B) {
	m := newMasker(b, detectAll(masking.Redact))
	c := PlanCopy(m, copyCols("id", "name", "note", "status"), CopyFormat{})
	line := []byte("42\tJane Smith\tA sturdy oak table, seats 6-8 people\tshipped\n")
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := c.MaskLine(line); err != nil {
			b.Fatal(err)
		}
	}
}
