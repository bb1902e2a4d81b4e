package sqlrisk

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

// These tests ask the real servers of this machine whether the readings the
// classifier relies on are the servers' own. They run only harmless
// statements (SELECTs, session SETs, a rolled-back SET ROLE).

func TestPostgresOracle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testenv.PostgresURL(t, "postgres"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	c := New(Config{})
	classify := func(sql string) *protocols.Classification {
		return c.Classify(&protocols.Command{Protocol: protocols.Postgres, Text: sql})
	}
	statements := func(t *testing.T, sql string) int {
		t.Helper()
		res, err := conn.PgConn().Exec(ctx, sql).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return len(res)
	}

	t.Run("standard_conforming_strings moves statement boundaries", func(t *testing.T) {
		const probe = `SELECT 'a\'' ; SELECT 2; --'`
		if n := statements(t, probe); n != 1 {
			t.Fatalf("with the setting on the server ran %d statements, want 1", n)
		}
		statements(t, "SET standard_conforming_strings = off")
		defer statements(t, "SET standard_conforming_strings = on")
		if n := statements(t, probe); n != 2 {
			t.Fatalf("with the setting off the server ran %d statements, want 2", n)
		}
		// The classifier reads the text both ways.
		cls := classify(`SELECT 'a\'' ; DROP TABLE users; --'`)
		if !slices.Contains(cls.Rules, rule.SchemaDrop) {
			t.Errorf("the hidden DROP is not seen: %v", cls.Rules)
		}
	})

	t.Run("quoted upper-case name is another function", func(t *testing.T) {
		_, err := conn.Exec(ctx, `SELECT "PG_SLEEP"(0)`)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42883" {
			t.Fatalf(`"PG_SLEEP" resolved: %v`, err)
		}
		if _, err := conn.Exec(ctx, `SELECT PG_SLEEP(0), U&"\0070g_sleep"(0)`); err != nil {
			t.Fatalf("folded and unicode-escaped names do not resolve: %v", err)
		}
		if cls := classify(`SELECT "PG_READ_FILE"('x')`); cls.Risk != protocols.RiskNone {
			t.Errorf(`"PG_READ_FILE" classified %s`, cls.Risk)
		}
		if cls := classify(`SELECT U&"\0070g_read_file"('x')`); cls.Risk != protocols.RiskCritical {
			t.Errorf(`U&"\0070g_read_file" classified %s`, cls.Risk)
		}
	})

	t.Run("set_config names are case-insensitive", func(t *testing.T) {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck
		var user string
		if err := tx.QueryRow(ctx, "SELECT set_config('ROLE', 'pg_monitor', true), current_user").Scan(new(string), &user); err != nil {
			t.Fatal(err)
		}
		if user != "pg_monitor" {
			t.Fatalf("set_config('ROLE') did not switch the role: current_user = %s", user)
		}
		if cls := classify("SELECT set_config('ROLE', 'pg_monitor', true)"); !slices.Contains(cls.Rules, rule.PrivilegeSetRole) {
			t.Errorf("classified %v", cls.Rules)
		}
	})
}

func TestMariaDBOracle(t *testing.T) {
	testenv.Need(t, "MariaDB", testenv.MariaDBAddr)
	bin, err := exec.LookPath("mariadb")
	if err != nil {
		if bin, err = exec.LookPath("mysql"); err != nil {
			if testenv.InCI() {
				t.Fatal("the mariadb client is not installed")
			}
			t.Skip("the mariadb client is not installed")
		}
	}
	host, port, err := net.SplitHostPort(testenv.MariaDBAddr)
	if err != nil {
		t.Fatal(err)
	}
	// run sends sql through the real client, which keeps comments
	// (--comments) and prints one line per row of every result set.
	run := func(t *testing.T, sql string) []string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, "-h", host, "-P", port, "-u", "root",
			"--batch", "--skip-column-names", "--comments", "-e", sql).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", sql, err, out)
		}
		return strings.Fields(string(out))
	}
	c := New(Config{})
	classify := func(sql string) *protocols.Classification {
		return c.Classify(&protocols.Command{Protocol: protocols.MySQL, Text: sql})
	}

	t.Run("executable comments run", func(t *testing.T) {
		if got := run(t, "SELECT 1 /*M!100100 + 1 */ /*!50000 + 1 */ /* + 100 */"); len(got) != 1 || got[0] != "3" {
			t.Fatalf("server answered %q, want 3: /*M! and /*! content is code", got)
		}
		if cls := classify("SELECT 1 /*M!100100 + LENGTH(LOAD_FILE('/etc/hostname')) */"); cls.Risk != protocols.RiskCritical {
			t.Errorf("classified %s %v", cls.Risk, cls.Rules)
		}
	})

	t.Run("NO_BACKSLASH_ESCAPES moves statement boundaries", func(t *testing.T) {
		const probe = `SELECT 'a\'; SELECT 2; -- '`
		if got := run(t, probe); len(got) != 4 { // a';, SELECT, 2;, --: one row of one string
			t.Fatalf("in the default mode the server answered %q, want one string", got)
		}
		if got := run(t, "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES'); "+probe); len(got) != 2 || got[1] != "2" {
			t.Fatalf("with NO_BACKSLASH_ESCAPES the server answered %q, want two statements", got)
		}
		if cls := classify(`SELECT 'a\'; DROP TABLE users; -- '`); !slices.Contains(cls.Rules, rule.SchemaDrop) {
			t.Errorf("the hidden DROP is not seen: %v", cls.Rules)
		}
	})

	t.Run("function names ignore case and backquotes", func(t *testing.T) {
		if got := run(t, "SELECT `LENGTH`('abc') + length('d')"); len(got) != 1 || got[0] != "4" {
			t.Fatalf("server answered %q", got)
		}
		if cls := classify("SELECT `Load_File`('/etc/hostname')"); cls.Risk != protocols.RiskCritical {
			t.Errorf("classified %s", cls.Risk)
		}
	})
}
