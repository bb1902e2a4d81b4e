package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/testenv"
)

func TestPreview(t *testing.T) {
	testenv.Need(t, "PostgreSQL", testenv.PostgresAddr)
	db := testenv.PostgresDB(t)
	ctx := context.Background()
	admin := connect(t, testenv.PostgresURL(t, db))
	if _, err := admin.Exec(ctx, `CREATE TABLE pv_orders (id int PRIMARY KEY, region text, done bool);
		INSERT INTO pv_orders SELECT g, CASE WHEN g % 4 = 0 THEN 'eu' ELSE 'us' END, g % 2 = 0 FROM generate_series(1, 2000) g;
		CREATE TABLE pv_lines (order_id int REFERENCES pv_orders(id), qty int);
		CREATE VIEW pv_eu AS SELECT * FROM pv_orders WHERE region = 'eu';
		CREATE TABLE pv_archive (LIKE pv_orders);
		ANALYZE pv_orders;`); err != nil {
		t.Fatal(err)
	}
	conn := &protocols.Connection{Name: "main", Protocol: protocols.Postgres,
		Upstream: &Upstream{Address: testenv.PostgresAddr, Database: db, User: "postgres", TLS: UpstreamTLS{Mode: "disable"}}}
	e := New()
	preview := func(t *testing.T, text string, exact bool, rules ...string) *protocols.Preview {
		t.Helper()
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		return e.Preview(pctx, conn, &protocols.Command{Protocol: protocols.Postgres, Text: text}, &protocols.Classification{Rules: rules}, protocols.PreviewOptions{ExactCount: exact})
	}
	count := func() int {
		var n int
		if err := admin.QueryRow(ctx, "SELECT count(*) FROM pv_orders").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("delete: planner estimate and exact count", func(t *testing.T) {
		p := preview(t, "DELETE FROM pv_orders WHERE region = 'eu'", true, "write.delete")
		if p.Status != protocols.PreviewOK || len(p.Effects) != 1 {
			t.Fatalf("%+v", p)
		}
		ef := p.Effects[0]
		if ef.Kind != "delete" || ef.Object != "public.pv_orders" || ef.EstimatedRows == nil || *ef.EstimatedRows < 400 || *ef.EstimatedRows > 600 {
			t.Fatalf("effect %+v (estimate %v)", ef, ef.EstimatedRows)
		}
		if ef.ExactRows == nil || *ef.ExactRows != 500 {
			t.Fatalf("exact rows %v", ef.ExactRows)
		}
		if count() != 2000 {
			t.Fatal("the preview deleted rows")
		}
	})
	t.Run("no exact count unless asked", func(t *testing.T) {
		p := preview(t, "UPDATE pv_orders o SET done = true FROM pv_lines l WHERE l.order_id = o.id", false, "write.update")
		if p.Status != protocols.PreviewOK || p.Effects[0].Kind != "update" || p.Effects[0].ExactRows != nil || p.Effects[0].EstimatedRows == nil {
			t.Fatalf("%+v", p)
		}
	})
	t.Run("insert values and a data-modifying CTE run nothing", func(t *testing.T) {
		p := preview(t, "INSERT INTO pv_archive VALUES (1, 'eu', true), (2, 'us', false)", true, "write.insert")
		if p.Status != protocols.PreviewOK || *p.Effects[0].ExactRows != 2 {
			t.Fatalf("%+v", p)
		}
		p = preview(t, "WITH d AS (DELETE FROM pv_orders WHERE done RETURNING *) INSERT INTO pv_archive SELECT * FROM d", true, "write.delete", "write.insert")
		kinds := []string{}
		for _, ef := range p.Effects {
			kinds = append(kinds, ef.Kind+" "+ef.Object)
		}
		if p.Status != protocols.PreviewOK || !strings.Contains(strings.Join(kinds, ","), "delete public.pv_orders") ||
			!strings.Contains(strings.Join(kinds, ","), "insert public.pv_archive") {
			t.Fatalf("%+v", p)
		}
		var archived int
		_ = admin.QueryRow(ctx, "SELECT count(*) FROM pv_archive").Scan(&archived)
		if count() != 2000 || archived != 0 {
			t.Fatal("the preview ran a write")
		}
	})
	t.Run("drop: size, rows and dependents", func(t *testing.T) {
		p := preview(t, "DROP TABLE pv_orders CASCADE", false, "schema.drop")
		if p.Status != protocols.PreviewOK || len(p.Effects) != 1 {
			t.Fatalf("%+v", p)
		}
		ef := p.Effects[0]
		deps := strings.Join(ef.Dependents, "; ")
		if ef.ObjectType != "table" || ef.Bytes == nil || *ef.Bytes == 0 || ef.EstimatedRows == nil || *ef.EstimatedRows != 2000 ||
			!strings.Contains(deps, "view pv_eu") || !strings.Contains(deps, "pv_lines") {
			t.Fatalf("effect %+v", ef)
		}
		if p := preview(t, "TRUNCATE no_such_table", false, "schema.truncate"); p.Status != protocols.PreviewOK || !strings.Contains(p.Effects[0].Note, "no such relation") {
			t.Fatalf("missing table: %+v", p)
		}
	})
	t.Run("skipped, parameters, reads", func(t *testing.T) {
		if p := preview(t, "DELETE FROM pv_orders WHERE id = (SELECT lo_import('/etc/passwd'))", false, "write.delete", "reach.file"); p.Status != protocols.PreviewSkipped {
			t.Fatalf("reach: %+v", p)
		}
		if p := preview(t, "DELETE FROM pv_orders WHERE id = $1", true, "write.delete"); p.Status != protocols.PreviewFailed || !strings.Contains(p.Effects[0].Note, "parameters") {
			t.Fatalf("parameters: %+v", p)
		}
		if p := preview(t, "SELECT * FROM pv_orders", true); p != nil {
			t.Fatalf("a read: %+v", p)
		}
	})
	t.Run("a locked table times out cleanly", func(t *testing.T) {
		locker := connect(t, testenv.PostgresURL(t, db))
		tx, err := locker.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "LOCK TABLE pv_orders IN ACCESS EXCLUSIVE MODE"); err != nil {
			t.Fatal(err)
		}
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		p := e.Preview(pctx, conn, &protocols.Command{Protocol: protocols.Postgres, Text: "DELETE FROM pv_orders WHERE done"},
			&protocols.Classification{Rules: []string{"write.delete"}}, protocols.PreviewOptions{ExactCount: true})
		if p.Status != protocols.PreviewTimeout || !strings.Contains(p.Note, "timed out") {
			t.Fatalf("%+v", p)
		}
		// Nothing of the preview waits on the lock afterwards.
		deadline := time.Now().Add(5 * time.Second)
		for {
			var waiting int
			if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'airlock preview' AND datname = $1", db).Scan(&waiting); err != nil {
				t.Fatal(err)
			}
			if waiting == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d preview sessions left behind", waiting)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}
