package main

import (
	"context"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Ordinary OLTP table: a product catalogue with nothing a masking detector
// should recognise (no e-mail addresses, no card-like or long digit runs,
// no dotted quads, no credential words), so that reading it through
// airlock-full measures what masking costs when it has nothing to mask,
// which is what most results are.
const (
	ordinaryTable = "bench_ordinary"
	ordinaryRows  = 10000
	ordinaryPage  = 100
	// ordinaryVersion is the table's comment: a table whose comment differs
	// was made by another version of the generator and is recreated.
	ordinaryVersion = "airlock-bench ordinary rows v1"
)

// ordinaryColumns are the table's columns, in table and script order.
var ordinaryColumns = []string{"id", "sku", "title", "description", "price", "quantity", "status", "updated_at"}

// ordinaryScript reads 100 rows of all 8 columns.
var ordinaryScript = fmt.Sprintf(`\set start random(1, %d)
SELECT %s FROM %s WHERE id BETWEEN :start AND :start + %d;
`, ordinaryRows-ordinaryPage+1, strings.Join(ordinaryColumns, ", "), ordinaryTable, ordinaryPage-1)

var (
	ordinaryMaterials = []string{"steel", "brass", "oak", "walnut", "aluminium", "nylon", "ceramic", "linen", "cotton", "bamboo", "copper", "glass", "beech", "slate"}
	ordinaryItems     = []string{"hinge", "shelf bracket", "drawer pull", "cabinet knob", "door stop", "coat hook", "towel rail", "picture frame", "storage box", "desk lamp", "plant pot", "serving tray", "bookend", "wall clock"}
	ordinaryFinishes  = []string{"matte black", "brushed nickel", "natural oil", "polished chrome", "satin white", "antique bronze", "smoke grey"}
	ordinaryUses      = []string{"kitchen cabinets", "bathroom walls", "office desks", "garden sheds", "hallways", "workshops", "nurseries", "holiday cottages"}
	// ordinaryStatuses repeats active: most of a catalogue is on sale.
	ordinaryStatuses = []string{"active", "active", "active", "active", "active", "active", "backorder", "discontinued", "draft", "active"}
	ordinaryEpoch    = time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
)

// ordinaryRow is one product.
type ordinaryRow struct {
	ID          int32
	SKU         string
	Title       string
	Description string
	PriceCents  int64
	Quantity    int32
	Status      string
	UpdatedAt   time.Time
}

// makeOrdinaryRow returns the product with id, the same on every run.
func makeOrdinaryRow(id int) ordinaryRow {
	material := ordinaryMaterials[id%len(ordinaryMaterials)]
	item := ordinaryItems[(id/len(ordinaryMaterials))%len(ordinaryItems)]
	finish := ordinaryFinishes[(id*3)%len(ordinaryFinishes)]
	use := ordinaryUses[(id*5)%len(ordinaryUses)]
	code := func(s string) string { return strings.ToUpper(strings.ReplaceAll(s, " ", "")[:3]) }
	return ordinaryRow{
		ID:    int32(id),
		SKU:   fmt.Sprintf("%s-%s-%d", code(material), code(item), 10000+id),
		Title: strings.ToUpper(finish[:1]) + finish[1:] + " " + material + " " + item,
		Description: fmt.Sprintf("A %s %s in %s for %s, sold in packs of %d with fixings included and a two year guarantee.",
			material, item, finish, use, 1+id%12),
		PriceCents: 199 + int64(id*7919)%99800,
		Quantity:   int32((id * 37) % 480),
		Status:     ordinaryStatuses[id%len(ordinaryStatuses)],
		UpdatedAt:  ordinaryEpoch.Add(time.Duration(id)*17*time.Minute + time.Duration(id%60)*time.Second),
	}
}

// values returns the row for COPY, in ordinaryColumns order.
func (r ordinaryRow) values() []any {
	price := pgtype.Numeric{Int: big.NewInt(r.PriceCents), Exp: -2, Valid: true}
	return []any{r.ID, r.SKU, r.Title, r.Description, price, r.Quantity, r.Status, r.UpdatedAt}
}

// prepareOrdinary (re)creates the ordinary table when it is missing, short
// or made by another version of the generator.
func (b *bench) prepareOrdinary(ctx context.Context, conn *pgx.Conn) error {
	var n int
	var comment *string
	err := conn.QueryRow(ctx, "SELECT count(*), obj_description($1::regclass, 'pg_class') FROM "+ordinaryTable, ordinaryTable).Scan(&n, &comment)
	if err == nil && n == ordinaryRows && comment != nil && *comment == ordinaryVersion {
		return nil
	}
	b.log.Info("creating the ordinary-row table", "table", ordinaryTable, "rows", ordinaryRows)
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("create %s: %w", ordinaryTable, err)
	}
	defer tx.Rollback(ctx)
	for _, q := range []string{
		"DROP TABLE IF EXISTS " + ordinaryTable,
		"CREATE TABLE " + ordinaryTable + ` (
			id integer PRIMARY KEY,
			sku text NOT NULL,
			title text NOT NULL,
			description text NOT NULL,
			price numeric(10,2) NOT NULL,
			quantity integer NOT NULL,
			status text NOT NULL,
			updated_at timestamptz NOT NULL)`,
		"COMMENT ON TABLE " + ordinaryTable + " IS '" + ordinaryVersion + "'",
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("create %s: %w", ordinaryTable, err)
		}
	}
	rows := make([][]any, ordinaryRows)
	for i := range rows {
		rows[i] = makeOrdinaryRow(i + 1).values()
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{ordinaryTable}, ordinaryColumns, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("fill %s: %w", ordinaryTable, err)
	}
	if _, err := tx.Exec(ctx, "ANALYZE "+ordinaryTable); err != nil {
		return fmt.Errorf("analyze %s: %w", ordinaryTable, err)
	}
	return tx.Commit(ctx)
}
