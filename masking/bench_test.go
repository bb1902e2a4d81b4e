package masking

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

// benchConfig is the suggested production shape: PII partially masked,
// secrets redacted.
func benchConfig() Config {
	return Config{HashKey: "0123456789abcdef0123", Detect: []DetectRule{
		{Entity: "email", Strategy: Partial},
		{Entity: "payment_card", Strategy: Partial},
		{Entity: "pii", Strategy: Redact},
		{Entity: "secrets", Strategy: Redact},
	}}
}

var oltpCols = []protocols.Column{
	{Name: "id", Type: protocols.TypeNumber},
	{Name: "customer", Type: protocols.TypeText},
	{Name: "address", Type: protocols.TypeText},
	{Name: "product", Type: protocols.TypeText},
	{Name: "description", Type: protocols.TypeText},
	{Name: "created_at", Type: protocols.TypeTime},
	{Name: "price", Type: protocols.TypeNumber},
	{Name: "order_ref", Type: protocols.TypeText},
	{Name: "status", Type: protocols.TypeText},
	{Name: "external_id", Type: protocols.TypeUUID},
	{Name: "attrs", Type: protocols.TypeJSON},
	{Name: "note", Type: protocols.TypeText},
}

var (
	firstNames = []string{"Jane", "John", "Amélie", "Søren", "Priya", "Wei", "Carlos", "Fatima", "Olga", "Kenji"}
	lastNames  = []string{"Smith", "Okafor", "Müller", "García", "Nakamura", "O'Brien", "Kowalski", "Dubois"}
	streets    = []string{"Elm Street", "Rue de Rivoli", "Hauptstraße", "Calle Mayor", "Maple Avenue", "Via Roma"}
	cities     = []string{"Springfield, IL 62704", "Paris 75001", "Berlin 10115", "Madrid 28013", "Toronto, ON M5V 2T6"}
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

func oltpRow(r *rand.Rand) [][]byte {
	s := func(v string) []byte { return []byte(v) }
	pick := func(xs []string) string { return xs[r.IntN(len(xs))] }
	desc := pick(sentences) + " " + pick(sentences)
	return [][]byte{
		s(fmt.Sprint(r.IntN(10_000_000))),
		s(pick(firstNames) + " " + pick(lastNames)),
		s(fmt.Sprintf("%d %s, %s", 1+r.IntN(9999), pick(streets), pick(cities))),
		s(pick(products)),
		s(desc),
		s(fmt.Sprintf("2024-%02d-%02d %02d:%02d:%02d.%06d+00", 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1e6))),
		s(fmt.Sprintf("%d.%02d", r.IntN(5000), r.IntN(100))),
		s(fmt.Sprintf("ORD-2024-%06d", r.IntN(1e6))),
		s(pick(statuses)),
		s(fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", r.Uint32(), r.IntN(1<<16), r.IntN(1<<12), r.IntN(1<<12), r.Uint64()&(1<<48-1))),
		s(fmt.Sprintf(`{"color":"walnut","dims":{"w":%d,"d":90,"h":75},"tags":["oak","dining"],"stock":%d}`, 120+r.IntN(120), r.IntN(500))),
		s(pick(sentences)),
	}
}

var denseCols = []protocols.Column{
	{Name: "email", Type: protocols.TypeText},
	{Name: "card", Type: protocols.TypeText},
	{Name: "phone", Type: protocols.TypeText},
	{Name: "iban", Type: protocols.TypeText},
	{Name: "ip", Type: protocols.TypeText},
	{Name: "token", Type: protocols.TypeText},
	{Name: "config", Type: protocols.TypeText},
	{Name: "contact", Type: protocols.TypeJSON},
}

func denseRow(r *rand.Rand) [][]byte {
	s := func(v string) []byte { return []byte(v) }
	pick := func(xs []string) string { return xs[r.IntN(len(xs))] }
	return [][]byte{
		s(fmt.Sprintf("%s.%s%d@example.com", strings.ToLower(pick(firstNames[:2])), strings.ToLower(pick(lastNames[:2])), r.IntN(100))),
		s(pick([]string{"4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005", "6011111111111117"})),
		s(pick([]string{"+1 (212) 555-0100", "+44 20 7946 0958", "020 7946 0958", "+33 1 23 45 67 89"})),
		s(pick([]string{"DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "NL91ABNA0417164300"})),
		s(fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), r.IntN(256))),
		s("ghp_R2d2C3poBb8LukeLeiaHanSolo1234567890"),
		s("host=db.internal user=app password=Tr0ub4dor&3 sslmode=require"),
		s(`{"email":"jane@example.com","phone":"+1 212 555 0100","card":"4111111111111111"}`),
	}
}

func rowBytes(rows [][][]byte) int64 {
	n := 0
	for _, row := range rows {
		for _, v := range row {
			n += len(v)
		}
	}
	return int64(n)
}

func benchRows(b *testing.B, cols []protocols.Column, gen func(*rand.Rand) [][]byte) {
	benchRowsWith(b, benchConfig(), cols, gen)
}

func benchRowsWith(b *testing.B, cfg Config, cols []protocols.Column, gen func(*rand.Rand) [][]byte) {
	m := newMasker(b, cfg)
	r := rand.New(rand.NewPCG(1, 2))
	rows := make([][][]byte, 256)
	for i := range rows {
		rows[i] = gen(r)
	}
	rm := m.Plan(cols)
	work := make([][]byte, len(cols))
	perRow := rowBytes(rows) / int64(len(rows))
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

// BenchmarkMaskRowNoPII is ordinary OLTP rows (names, addresses, product
// text, timestamps, prices, order ids, UUIDs, small JSON) with every
// detector on: the cost of masking when there is nothing to mask.
func BenchmarkMaskRowNoPII(b *testing.B) { benchRows(b, oltpCols, oltpRow) }

// BenchmarkMaskRowNoPIIContact is the same rows with only the contact and
// payment detectors on (e-mail, card, phone): the prefilter rules most
// values out without the scanning pass.
func BenchmarkMaskRowNoPIIContact(b *testing.B) {
	cfg := Config{HashKey: "0123456789abcdef0123", Detect: []DetectRule{
		{Entity: "email", Strategy: Partial}, {Entity: "payment_card", Strategy: Partial}, {Entity: "phone", Strategy: Redact}}}
	benchRowsWith(b, cfg, oltpCols, oltpRow)
}

// BenchmarkMaskRowDense is rows in which every value holds PII or a secret.
func BenchmarkMaskRowDense(b *testing.B) { benchRows(b, denseCols, denseRow) }

// BenchmarkTextNoPII scans only text columns (nothing skipped by type):
// the scanner's own throughput on ordinary prose.
func BenchmarkTextNoPII(b *testing.B) {
	m := newMasker(b, benchConfig())
	var sb strings.Builder
	for sb.Len() < 64<<10 {
		sb.WriteString(sentences[sb.Len()%len(sentences)])
		sb.WriteString(" ")
	}
	in := []byte(sb.String())
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	start := cpuTime()
	for i := 0; i < b.N; i++ {
		m.Text(in)
	}
	reportCPU(b, start, int64(len(in)))
}

// BenchmarkJSONNoPII masks a JSON document without PII.
func BenchmarkJSONNoPII(b *testing.B) {
	m := newMasker(b, benchConfig())
	var sb strings.Builder
	sb.WriteString(`{"items":[`)
	for i := 0; sb.Len() < 64<<10; i++ {
		fmt.Fprintf(&sb, `{"sku":"SKU-%06d","name":%q,"price":%d.99,"qty":%d,"tags":["home","sale"]},`, i, sentences[i%len(sentences)], i%500, i%7)
	}
	sb.WriteString(`{}]}`)
	in := []byte(sb.String())
	rm := m.Plan([]protocols.Column{jsonCol})
	row := make([][]byte, 1)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	start := cpuTime()
	for i := 0; i < b.N; i++ {
		row[0] = in
		rm.MaskRow(row)
	}
	reportCPU(b, start, int64(len(in)))
}

// BenchmarkPlan is the per-result-set cost: matching column rules and
// preparing a RowMasker for the OLTP columns.
func BenchmarkPlan(b *testing.B) {
	cfg := benchConfig()
	cfg.Columns = []ColumnRule{{Name: "*password*", Strategy: Null}, {TableColumn: "public.users.ssn", Strategy: Hash}}
	m := newMasker(b, cfg)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if m.Plan(oltpCols) == nil {
			b.Fatal("nil plan")
		}
	}
}

var catalogCols = []protocols.Column{
	{Name: "id", Type: protocols.TypeNumber},
	{Name: "sku", Type: protocols.TypeText},
	{Name: "title", Type: protocols.TypeText},
	{Name: "description", Type: protocols.TypeText},
	{Name: "price", Type: protocols.TypeNumber},
	{Name: "quantity", Type: protocols.TypeNumber},
	{Name: "status", Type: protocols.TypeText},
	{Name: "updated_at", Type: protocols.TypeTime},
}

// catalogRow is a product catalogue row, the shape of the end-to-end
// benchmark's ordinary workload: prose with few digits.
func catalogRow(r *rand.Rand) [][]byte {
	materials := []string{"steel", "brass", "oak", "walnut", "aluminium", "linen", "bamboo", "copper"}
	items := []string{"hinge", "shelf bracket", "drawer pull", "cabinet knob", "coat hook", "desk lamp", "plant pot"}
	finishes := []string{"polished chrome", "smoke grey", "natural oil", "antique bronze", "matte black"}
	places := []string{"workshops", "office desks", "holiday cottages", "hallways", "kitchens", "garden sheds"}
	statuses := []string{"active", "active", "active", "backorder", "discontinued", "draft"}
	pick := func(xs []string) string { return xs[r.IntN(len(xs))] }
	id := 1 + r.IntN(10000)
	m, it, fin := pick(materials), pick(items), pick(finishes)
	return [][]byte{
		fmt.Appendf(nil, "%d", id),
		fmt.Appendf(nil, "%s-%s-%d", strings.ToUpper(m[:3]), strings.ToUpper(it[:3]), 10000+id),
		fmt.Appendf(nil, "%s %s %s", fin, m, it),
		fmt.Appendf(nil, "A %s %s in %s for %s, sold in packs of %d with fixings included and a two year guarantee.", m, it, fin, pick(places), 2+r.IntN(8)),
		fmt.Appendf(nil, "%d.%02d", r.IntN(1000), r.IntN(100)),
		fmt.Appendf(nil, "%d", r.IntN(500)),
		[]byte(pick(statuses)),
		[]byte("2026-01-05 08:17:01+00"),
	}
}

// BenchmarkMaskRowCatalog is catalogue rows with every detector on.
func BenchmarkMaskRowCatalog(b *testing.B) { benchRows(b, catalogCols, catalogRow) }

// quickstartConfig is the quickstart's detect rules (airlock.yaml):
// contact and payment data partially masked, every secret detector on.
func quickstartConfig() Config {
	return Config{HashKey: "0123456789abcdef0123", Detect: []DetectRule{
		{Entity: "email", Strategy: Partial},
		{Entity: "payment_card", Strategy: Partial},
		{Entity: "secrets", Strategy: Redact},
	}}
}

// benchPage masks pages of 100 rows, as a client's fetch returns them; one
// op is one page.
func benchPage(b *testing.B, cfg Config, cols []protocols.Column, gen func(*rand.Rand) [][]byte) {
	m := newMasker(b, cfg)
	r := rand.New(rand.NewPCG(1, 2))
	pages := make([][][][]byte, 8)
	var total int64
	for p := range pages {
		for range 100 {
			pages[p] = append(pages[p], gen(r))
		}
		total += rowBytes(pages[p])
	}
	rm := m.Plan(cols)
	work := make([][]byte, len(cols))
	b.SetBytes(total / int64(len(pages)))
	b.ReportAllocs()
	start := cpuTime()
	for i := 0; b.Loop(); i++ {
		for _, row := range pages[i%len(pages)] {
			copy(work, row)
			rm.MaskRow(work)
		}
	}
	reportCPU(b, start, total/int64(len(pages)))
}

// BenchmarkMaskPageQuickstart is a page of 100 ordinary rows (OLTP, then
// catalogue) with the quickstart's detectors: nothing to mask, so the cost
// is what the scanner spends ruling values out.
func BenchmarkMaskPageQuickstart(b *testing.B) {
	b.Run("oltp", func(b *testing.B) { benchPage(b, quickstartConfig(), oltpCols, oltpRow) })
	b.Run("catalog", func(b *testing.B) { benchPage(b, quickstartConfig(), catalogCols, catalogRow) })
	b.Run("dense", func(b *testing.B) { benchPage(b, quickstartConfig(), denseCols, denseRow) })
	// The same OLTP page with the contact detectors alone: the bound a
	// prefilter for the secret detectors approaches.
	contact := Config{HashKey: "0123456789abcdef0123", Detect: []DetectRule{
		{Entity: "email", Strategy: Partial}, {Entity: "payment_card", Strategy: Partial}}}
	b.Run("oltp-contact", func(b *testing.B) { benchPage(b, contact, oltpCols, oltpRow) })
}

// BenchmarkSecretFilter is the secret detectors' prefilter alone on
// ordinary prose that it rules out.
func BenchmarkSecretFilter(b *testing.B) {
	d := newDetectors(quickstartSet())
	in := []byte(sentences[0] + " " + sentences[2])
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if d.pre.secrets.mayHold(in) {
			b.Fatal("prose not ruled out")
		}
	}
}
