package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/session/identity"
)

// Fake PII seeded into a real table; none of it may reach a masked caller.
var fakePII = []string{
	"alice.liddell@example.com", "4111111111111111", "4242 4242 4242 4242",
	"AKIAIOSFODNN7EXAMPLE", "ghp_0123456789abcdefghijABCDEFGHIJ012345",
	"hunter2-Correct-Horse", "078-05-1120", "nested.secret@example.org",
	"bob@example.net",
}

const maskingConfig = `
masking:
  hash_key: "0123456789abcdef0123456789abcdef"
  detect:
    - {entity: email, strategy: partial}
    - {entity: payment_card, strategy: partial, keep: 4}
    - {entity: secrets, strategy: redact}
  columns:
    - {name: "*password*", strategy: "null"}
    - {table_column: "public.customers.ssn", strategy: hash}
  exempt: ["group:dba"]
`

func dbaIdentity() string {
	return fmt.Sprintf("  - name: dba\n    groups: [dba]\n    token_sha256: %s\n", identity.HashToken("dba-token"))
}

func seedCustomers(t *testing.T, db string) {
	t.Helper()
	c := pgxConnect(t, testenv.PostgresURL(t, db))
	ctx := context.Background()
	for _, q := range []string{
		"CREATE EXTENSION IF NOT EXISTS citext",
		`CREATE TABLE customers (id int PRIMARY KEY, name text, email citext UNIQUE, card text,
		  note text, password text, ssn text, data jsonb, tags text[], card_no bigint)`,
		`INSERT INTO customers VALUES
		 (1, 'Alice Liddell', 'alice.liddell@example.com', '4111111111111111',
		  'key AKIAIOSFODNN7EXAMPLE in notes', 'hunter2-Correct-Horse', '078-05-1120',
		  '{"contact": {"emails": ["nested.secret@example.org"]}, "plan": "pro"}',
		  '{bob@example.net,ordinary}', 4242424242424242),
		 (2, 'Plain Row', 'carol@example.com', 'n/a', 'token ghp_0123456789abcdefghijABCDEFGHIJ012345',
		  NULL, NULL, '{"plan": "free"}', '{x}', 7)`,
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func assertNoPII(t *testing.T, where, out string) {
	t.Helper()
	for _, s := range append(fakePII, "carol@example.com", "4242424242424242") {
		if strings.Contains(out, s) {
			t.Errorf("%s leaks %q:\n%s", where, s, out)
		}
	}
}

func TestMaskingEndToEnd(t *testing.T) {
	t.Parallel()
	needPsql(t)
	db := testenv.PostgresDB(t)
	seedCustomers(t, db)
	cfg := strings.Replace(baseConfig(db, maskingConfig, ""), "connections:", dbaIdentity()+"connections:", 1)
	cfg = strings.Replace(cfg, "allow: [dev, agent]", "allow: [dev, agent, dba]", 1)
	in := startAirlock(t, cfg)
	dsn := in.dsn("dev", devToken, "main", "sslmode=disable")
	ctx := context.Background()

	t.Run("psql simple query", func(t *testing.T) {
		out, err := psql(t, dsn, "", "-c", "SELECT * FROM customers ORDER BY id")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		assertNoPII(t, "psql", out)
		if !strings.Contains(out, "Alice Liddell") || !strings.Contains(out, "1111") || !strings.Contains(out, "@example.com") {
			t.Fatalf("masked too much or nothing:\n%s", out)
		}
	})
	t.Run("pgx binary and text", func(t *testing.T) {
		c := pgxConnect(t, in.url("dev", devToken, "main", ""))
		rows, err := c.Query(ctx, "SELECT id, name, email::text, card, note, password, ssn, data, tags, card_no FROM customers ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		var dump strings.Builder
		for rows.Next() {
			var (
				id       int
				name     string
				email    string
				card     string
				note     string
				password *string
				ssn      *string
				data     map[string]any
				tags     []string
				cardNo   *int64
			)
			if err := rows.Scan(&id, &name, &email, &card, &note, &password, &ssn, &data, &tags, &cardNo); err != nil {
				t.Fatalf("a masked row does not decode: %v", err)
			}
			if password != nil {
				t.Errorf("password column not nulled: %q", *password)
			}
			if id == 1 && (ssn == nil || !strings.HasPrefix(*ssn, "hash:")) {
				t.Errorf("ssn not hashed: %v", ssn)
			}
			fmt.Fprintf(&dump, "%d %s %s %s %s %v %v %v %v\n", id, name, email, card, note, data, tags, cardNo, deref(ssn))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		assertNoPII(t, "pgx", dump.String())
		// The same SSN hashes to the same value in every session.
		var h1, h2 string
		c2 := pgxConnect(t, in.url("dev", devToken, "main", ""))
		_ = c.QueryRow(ctx, "SELECT ssn FROM customers WHERE id = 1").Scan(&h1)
		_ = c2.QueryRow(ctx, "SELECT ssn FROM customers WHERE id = 1", pgx.QueryExecModeSimpleProtocol).Scan(&h2)
		if h1 == "" || h1 != h2 {
			t.Errorf("hash not stable: %q %q", h1, h2)
		}
	})
	t.Run("copy text and csv", func(t *testing.T) {
		dir := t.TempDir()
		for _, q := range []string{
			`\copy customers TO '%s'`,
			`\copy customers (email, ssn, password) TO '%s' WITH (FORMAT csv, HEADER)`,
			`\copy (SELECT email, note FROM customers) TO '%s' WITH CSV`,
		} {
			f := filepath.Join(dir, "out")
			out, err := psql(t, dsn, "", "-c", fmt.Sprintf(q, f))
			if err != nil {
				t.Fatalf("%s: %v\n%s", q, err, out)
			}
			data, _ := os.ReadFile(f)
			assertNoPII(t, q, string(data))
			if len(data) == 0 {
				t.Fatalf("%s wrote nothing", q)
			}
		}
		// Binary COPY cannot be masked, so it is refused.
		out, _ := psql(t, dsn, "", "-c", `\copy customers TO '`+filepath.Join(dir, "bin")+`' WITH (FORMAT binary)`)
		if !strings.Contains(out, "binary COPY") {
			t.Fatalf("binary COPY not refused:\n%s", out)
		}
	})
	t.Run("errors and notifications", func(t *testing.T) {
		c := pgxConnect(t, in.url("dev", devToken, "main", ""))
		_, err := c.Exec(ctx, "INSERT INTO customers (id, email) VALUES (9, 'alice.liddell@example.com')")
		if err == nil || strings.Contains(err.Error(), "alice.liddell@example.com") {
			t.Fatalf("unique violation leaks or did not happen: %v", err)
		}
		var detail string
		if pe, ok := err.(interface{ SQLState() string }); ok {
			_ = pe
		}
		detail = fmt.Sprintf("%+v", err)
		assertNoPII(t, "error", detail)
		l := pgxConnect(t, in.url("dev", devToken, "main", ""))
		if _, err := l.Exec(ctx, "LISTEN pii"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(ctx, "SELECT pg_notify('pii', 'new signup bob@example.net')"); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		n, err := l.WaitForNotification(wctx)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(n.Payload, "bob@example.net") || !strings.Contains(n.Payload, "new signup") {
			t.Fatalf("notification payload %q", n.Payload)
		}
	})
	t.Run("exempt dba sees clear text", func(t *testing.T) {
		c := pgxConnect(t, in.url("dba", "dba-token", "main", ""))
		var email, card string
		if err := c.QueryRow(ctx, "SELECT email::text, card FROM customers WHERE id = 1").Scan(&email, &card); err != nil {
			t.Fatal(err)
		}
		if email != "alice.liddell@example.com" || card != "4111111111111111" {
			t.Fatalf("dba got %q %q", email, card)
		}
	})
	m := in.metrics(t)
	if !strings.Contains(m, `airlock_masked_values_total{connection="main",entity="email"}`) {
		t.Errorf("no masking metric:\n%s", grep(m, "masked"))
	}
	assertNoPII(t, "the log", in.Logs())
	// Recordings hold only what the caller saw: replay every one of them.
	in.stop()
	files := recordings(t, in)
	if len(files) == 0 {
		t.Fatal("no recordings")
	}
	for _, f := range files {
		out, code := airlockCmd(t, in, "replay", "--json", f)
		if code != 0 {
			t.Fatalf("replay %s: %s", f, out)
		}
		if strings.Contains(out, `"dba"`) {
			continue // the exempt caller's recording holds clear text by design
		}
		assertNoPII(t, "recording "+filepath.Base(f), out)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
