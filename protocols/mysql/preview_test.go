package mysql

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/testenv"
)

// previewDB creates a database on the local MariaDB with the tables the
// preview tests read, dropped when the test ends; it returns its name and
// a root connection to it.
func previewDB(t *testing.T) (string, *sql.DB) {
	t.Helper()
	testenv.Need(t, "MariaDB", testenv.MariaDBAddr)
	name := testenv.Unique("airlock_pv")
	root := openRoot(t, "")
	if _, err := root.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := root.Exec("DROP DATABASE IF EXISTS " + name); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	db := openRoot(t, name)
	if _, err := db.Exec(`CREATE TABLE orders (id INT PRIMARY KEY, region VARCHAR(10), done BOOL, KEY (region));
		INSERT INTO orders SELECT seq, IF(seq % 4 = 0, 'eu', 'us'), seq % 2 = 0 FROM seq_1_to_2000;
		CREATE TABLE order_lines (order_id INT, qty INT, CONSTRAINT fk_lines_order FOREIGN KEY (order_id) REFERENCES orders (id));
		INSERT INTO order_lines SELECT seq % 100 + 1, seq FROM seq_1_to_500;
		CREATE VIEW eu_orders AS SELECT * FROM orders WHERE region = 'eu';
		CREATE TRIGGER orders_audit BEFORE DELETE ON orders FOR EACH ROW SET @deleted = 1;
		CREATE TABLE archive LIKE orders;
		CREATE TABLE items (id INT PRIMARY KEY, owner INT, price INT);
		INSERT INTO items SELECT seq, seq % 50, seq % 7 FROM seq_1_to_300;
		CREATE TABLE nokey (a INT, b INT);
		INSERT INTO nokey VALUES (1, 1), (1, 1), (2, NULL), (3, 3);
		ANALYZE TABLE orders, order_lines, items, nokey`); err != nil {
		t.Fatal(err)
	}
	return name, db
}

func openRoot(t *testing.T, db string) *sql.DB {
	t.Helper()
	cfg := driver.NewConfig()
	cfg.Net, cfg.Addr, cfg.User, cfg.DBName = "tcp", testenv.MariaDBAddr, "root", db
	cfg.MultiStatements, cfg.ClientFoundRows = true, true
	c, err := driver.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := sql.OpenDB(c)
	t.Cleanup(func() { d.Close() })
	return d
}

type previewer struct {
	e    *Engine
	conn *protocols.Connection
}

func newPreviewer(db string) previewer {
	return previewer{e: New(), conn: &protocols.Connection{Name: "m", Protocol: protocols.MySQL,
		Upstream: &Upstream{Address: testenv.MariaDBAddr, Database: db, User: "root", TLS: UpstreamTLS{Mode: "disable"}}}}
}

func (p previewer) preview(t *testing.T, text string, exact bool, timeout time.Duration, rules ...string) *protocols.Preview {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return p.e.Preview(ctx, p.conn, &protocols.Command{Protocol: protocols.MySQL, Text: text},
		&protocols.Classification{Rules: rules}, protocols.PreviewOptions{ExactCount: exact})
}

func lines(p *protocols.Preview) string { return strings.Join(p.Lines(), "\n") }

func TestPreview(t *testing.T) {
	db, admin := previewDB(t)
	pv := newPreviewer(db)
	rows := func(table string) int {
		var n int
		if err := admin.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("delete: optimizer estimate and exact count", func(t *testing.T) {
		p := pv.preview(t, "DELETE FROM orders WHERE region = 'eu'", true, 3*time.Second, "write.delete")
		if p.Status != protocols.PreviewOK || len(p.Effects) != 1 {
			t.Fatalf("%s", lines(p))
		}
		ef := p.Effects[0]
		if ef.Kind != "delete" || ef.Object != db+".orders" || ef.EstimatedRows == nil || *ef.EstimatedRows < 400 || *ef.EstimatedRows > 600 {
			t.Fatalf("%s", lines(p))
		}
		if ef.ExactRows == nil || *ef.ExactRows != 500 {
			t.Fatalf("%s", lines(p))
		}
		if rows("orders") != 2000 {
			t.Fatal("the preview deleted rows")
		}
	})
	t.Run("no exact count unless asked; LIMIT caps the estimate", func(t *testing.T) {
		p := pv.preview(t, "UPDATE orders SET done = 1 WHERE done = 0 ORDER BY id LIMIT 30", false, 3*time.Second, "write.update")
		if p.Status != protocols.PreviewOK || p.Effects[0].ExactRows != nil || p.Effects[0].EstimatedRows == nil || *p.Effects[0].EstimatedRows != 30 {
			t.Fatalf("%s", lines(p))
		}
	})
	t.Run("multi-table writes count each target's distinct rows", func(t *testing.T) {
		p := pv.preview(t, "DELETE o, l FROM orders o JOIN order_lines l ON l.order_id = o.id WHERE l.qty > 490", true, 3*time.Second, "write.delete")
		if p.Status != protocols.PreviewOK || len(p.Effects) != 2 || p.Effects[0].Object != db+".orders" || p.Effects[1].Object != db+".order_lines" ||
			p.Effects[0].ExactRows == nil || *p.Effects[0].ExactRows != 10 || p.Effects[1].ExactRows == nil || *p.Effects[1].ExactRows != 10 ||
			p.Effects[0].EstimatedRows == nil {
			t.Fatalf("%s", lines(p))
		}
		// The SET column names no table: the catalog says it is orders'.
		p = pv.preview(t, "UPDATE orders o JOIN order_lines l ON l.order_id = o.id SET done = 1 WHERE l.qty > 10", true, 3*time.Second, "write.update")
		if p.Status != protocols.PreviewOK || len(p.Effects) != 1 || p.Effects[0].Object != db+".orders" ||
			p.Effects[0].ExactRows == nil || *p.Effects[0].ExactRows != 100 {
			t.Fatalf("%s", lines(p))
		}
		// A table without a key: its rows are told apart by all their
		// columns, NULLs included, duplicates each counted.
		p = pv.preview(t, "DELETE n FROM nokey n JOIN orders o ON o.id = n.a WHERE o.id <= 2", true, 3*time.Second, "write.delete")
		if p.Status != protocols.PreviewOK || p.Effects[0].ExactRows == nil || *p.Effects[0].ExactRows != 3 {
			t.Fatalf("%s", lines(p))
		}
	})
	t.Run("insert select, replace select, values", func(t *testing.T) {
		p := pv.preview(t, "INSERT INTO order_lines (order_id, qty) SELECT o.id, o.id FROM orders o WHERE o.id <= 7", true, 3*time.Second, "write.insert")
		if p.Status != protocols.PreviewOK || p.Effects[0].Object != db+".order_lines" || p.Effects[0].ExactRows == nil || *p.Effects[0].ExactRows != 7 {
			t.Fatalf("%s", lines(p))
		}
		p = pv.preview(t, "REPLACE INTO archive SELECT * FROM orders WHERE region = 'eu'", true, 3*time.Second, "write.insert")
		if p.Status != protocols.PreviewOK || p.Effects[0].Kind != "replace" || *p.Effects[0].ExactRows != 500 ||
			!strings.Contains(p.Effects[0].Note, "REPLACE first deletes") {
			t.Fatalf("%s", lines(p))
		}
		p = pv.preview(t, "INSERT INTO archive VALUES (1, 'eu', 1), (2, 'us', 0)", true, 3*time.Second, "write.insert")
		if p.Status != protocols.PreviewOK || *p.Effects[0].ExactRows != 2 {
			t.Fatalf("%s", lines(p))
		}
		if rows("archive") != 0 || rows("order_lines") != 500 {
			t.Fatal("the preview inserted rows")
		}
	})
	t.Run("drop: size, rows and dependents", func(t *testing.T) {
		p := pv.preview(t, "DROP TABLE orders", false, 3*time.Second, "schema.drop")
		if p.Status != protocols.PreviewOK || len(p.Effects) != 1 {
			t.Fatalf("%s", lines(p))
		}
		ef := p.Effects[0]
		deps := strings.Join(ef.Dependents, "; ")
		if ef.ObjectType != "table" || ef.Bytes == nil || *ef.Bytes == 0 || ef.EstimatedRows == nil ||
			*ef.EstimatedRows < 1500 || *ef.EstimatedRows > 2500 ||
			!strings.Contains(deps, "foreign key fk_lines_order of "+db+".order_lines") ||
			!strings.Contains(deps, "view "+db+".eu_orders") || !strings.Contains(deps, "trigger "+db+".orders_audit") {
			t.Fatalf("%s", lines(p))
		}
		p = pv.preview(t, "TRUNCATE no_such_table; DROP VIEW eu_orders; ALTER TABLE items DROP COLUMN price; DROP DATABASE "+db, false, 3*time.Second, "schema.truncate")
		if p.Status != protocols.PreviewOK || len(p.Effects) != 4 || !strings.Contains(p.Effects[0].Note, "no such table") ||
			p.Effects[1].ObjectType != "view" || p.Effects[2].Kind != "alter" || p.Effects[2].EstimatedRows == nil ||
			!strings.Contains(p.Effects[3].Note, "holds 5 tables and 1 views") {
			t.Fatalf("%s", lines(p))
		}
	})
	t.Run("skipped, parameters, reads, failures", func(t *testing.T) {
		if p := pv.preview(t, "DELETE FROM orders WHERE id = LENGTH(LOAD_FILE('/etc/passwd'))", true, 3*time.Second, "write.delete", "reach.file"); p.Status != protocols.PreviewSkipped {
			t.Fatalf("reach: %s", lines(p))
		}
		if p := pv.preview(t, "DELETE FROM orders WHERE id = ?", true, 3*time.Second, "write.delete"); p.Status != protocols.PreviewFailed || !strings.Contains(p.Effects[0].Note, "parameters") {
			t.Fatalf("parameters: %s", lines(p))
		}
		if p := pv.preview(t, "SELECT * FROM orders", true, 3*time.Second); p != nil {
			t.Fatalf("a read: %s", lines(p))
		}
		if p := pv.preview(t, "DELETE FROM no_such_table WHERE a = 1", true, 3*time.Second, "write.delete"); p.Status != protocols.PreviewFailed || !strings.Contains(p.Note, "1146") {
			t.Fatalf("missing table: %s", lines(p))
		}
		bad := newPreviewer(db)
		bad.conn.Upstream.(*Upstream).User = "airlock_no_such_user"
		if p := bad.preview(t, "DELETE FROM orders", true, 3*time.Second, "write.delete"); p.Status != protocols.PreviewFailed ||
			p.Note != "could not connect: the upstream did not accept the connection" {
			t.Fatalf("refused login: %s", lines(p))
		}
	})
	t.Run("a locked table times out cleanly", func(t *testing.T) {
		ctx := context.Background()
		locker, err := admin.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer locker.Close()
		if _, err := locker.ExecContext(ctx, "LOCK TABLES orders WRITE"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		p := pv.preview(t, "DELETE FROM orders WHERE done", true, time.Second, "write.delete")
		took := time.Since(start)
		if _, err := locker.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
			t.Fatal(err)
		}
		if p.Status != protocols.PreviewTimeout || !strings.Contains(p.Note, "timed out") {
			t.Fatalf("%s", lines(p))
		}
		if took > 5*time.Second {
			t.Errorf("the preview took %s with a timeout of 1s", took)
		}
		// Nothing of the preview waits on the lock afterwards.
		deadline := time.Now().Add(5 * time.Second)
		for {
			var waiting int
			if err := admin.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = ? AND INFO LIKE 'EXPLAIN%'", db).Scan(&waiting); err != nil {
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
		if rows("orders") != 2000 {
			t.Fatal("the preview deleted rows")
		}
	})
}

// TestPreviewCountMatchesTheWrite runs each write inside a transaction that
// is rolled back and checks that the exact count of its preview is the
// number of rows the server says it affected (found rows, for UPDATE).
func TestPreviewCountMatchesTheWrite(t *testing.T) {
	db, admin := previewDB(t)
	pv := newPreviewer(db)
	for _, stmt := range []string{
		"DELETE FROM items WHERE owner = 3",
		"UPDATE items AS i SET i.price = 0 WHERE i.price > 4 AND i.owner < 10",
		"DELETE FROM items WHERE price = 2 ORDER BY id DESC LIMIT 7",
		"DELETE FROM items WHERE owner IN (SELECT a FROM nokey)",
		"DELETE FROM items WHERE id > 10000",
		"DELETE FROM items",
		"UPDATE items SET price = price + 1 WHERE owner BETWEEN 5 AND 9",
		"UPDATE items SET price = 0 WHERE price <> 0 LIMIT 11",
		"UPDATE items i JOIN nokey n ON n.a = i.owner SET i.price = 9",
		"UPDATE items i, nokey n SET i.price = n.a, n.b = 0 WHERE n.a = i.owner",
		"UPDATE items i JOIN (SELECT owner, MAX(id) AS top FROM items GROUP BY owner) m ON m.top = i.id SET i.price = 1",
		"DELETE i FROM items i JOIN nokey n ON n.a = i.owner",
		"DELETE i, n FROM items i JOIN nokey n ON n.a = i.owner WHERE i.price < 5",
		"DELETE FROM i USING items i LEFT JOIN nokey n ON n.a = i.owner WHERE n.a IS NULL AND i.id < 100",
		"DELETE n FROM nokey n, items i WHERE i.owner = n.a",
		"DELETE i1 FROM items i1 JOIN items i2 ON i2.owner = i1.owner AND i2.id > i1.id WHERE i1.price = 3",
		"INSERT INTO archive (id, region) SELECT id, 'x' FROM items WHERE price = 1",
		"INSERT INTO nokey (a) SELECT i.id FROM items i JOIN nokey n ON n.a = i.owner",
		"INSERT INTO archive (id, done) SELECT owner, COUNT(*) > 5 FROM items GROUP BY owner",
		"INSERT INTO archive (id) SELECT id FROM items WHERE id < 5 UNION SELECT id + 1000 FROM items WHERE id < 3",
		"INSERT INTO archive (id, done) SELECT DISTINCT owner, 1 FROM items",
		"INSERT INTO nokey SELECT i.owner, i.owner FROM items i WHERE i.id <= 4",
		"INSERT INTO archive (id) SELECT 1",
	} {
		t.Run(stmt, func(t *testing.T) {
			p := pv.preview(t, stmt, true, 5*time.Second, "write.delete")
			if p == nil || p.Status != protocols.PreviewOK {
				t.Fatalf("%v", p)
			}
			var want int64
			for _, ef := range p.Effects {
				if ef.ExactRows == nil {
					t.Fatalf("no exact count: %s", lines(p))
				}
				want += *ef.ExactRows
			}
			tx, err := admin.Begin()
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			res, err := tx.Exec(stmt)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := res.RowsAffected()
			if got != want {
				t.Fatalf("the write affected %d rows, its preview counted %d:\n%s", got, want, lines(p))
			}
		})
	}
}
