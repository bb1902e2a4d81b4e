package pgcodec

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/masking"
	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/jackc/pgx/v5"
)

func copyCols(names ...string) []protocols.Column {
	cols := make([]protocols.Column, len(names))
	for i, n := range names {
		cols[i] = protocols.Column{Name: n, Type: protocols.TypeText}
	}
	return cols
}

func TestCopyMasker(t *testing.T) {
	m := newMasker(t, masking.Config{HashKey: "0123456789abcdef0123",
		Detect:  []masking.DetectRule{{Entity: "all", Strategy: masking.Redact}},
		Columns: []masking.ColumnRule{{Name: "ssn", Strategy: masking.Null}, {Name: "tax_id", Strategy: masking.Hash}}})
	cols := copyCols("id", "email", "note", "ssn", "name")
	null := "NULL"
	cases := []struct {
		name string
		f    CopyFormat
		in   string
		want string // "" means unchanged
	}{
		{"text", CopyFormat{}, "1\tjane@example.com\t\\N\t123-45-6789\tJane\\tSmith\n",
			"1\t[redacted:email]\t\\N\t\\N\tJane\\tSmith\n"},
		{"text escapes", CopyFormat{}, "2\tx\tmail\\tjane@example.com\\\\ok\t\\N\tA\\\\B\n",
			"2\tx\tmail\\t[redacted:email]\\\\ok\t\\N\tA\\\\B\n"},
		{"text octal hides", CopyFormat{}, "3\tjane\\100example.com\t\\N\t\\N\tx\n", "3\t[redacted:email]\t\\N\t\\N\tx\n"},
		{"text clean", CopyFormat{}, "4\tJane\t\\N\t\\N\tSmith\n", ""},
		{"csv", CopyFormat{CSV: true}, "1,jane@example.com,\"Smith, Jane\",123-45-6789,\"\"\n",
			"1,\"[redacted:email]\",\"Smith, Jane\",,\"\"\n"},
		{"csv quotes", CopyFormat{CSV: true}, "2,x,\"say \"\"hi\"\" jane@example.com\",,y\n",
			"2,x,\"say \"\"hi\"\" [redacted:email]\",,y\n"},
		{"csv newline in field", CopyFormat{CSV: true}, "3,x,\"a\nb jane@example.com\",,y\n", "3,x,\"a\nb [redacted:email]\",,y\n"},
		{"csv clean", CopyFormat{CSV: true}, "4,x,\"a,b\",,y\r\n", ""},
		{"custom", CopyFormat{Delimiter: '|', Null: &null}, "5|jane@example.com|NULL|123-45-6789|a\\|b\n", "5|[redacted:email]|NULL|NULL|a\\|b\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := PlanCopy(m, cols, tc.f)
			in := []byte(tc.in)
			out, err := c.MaskLine(in)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if want == "" {
				want = tc.in
				if &out[0] != &in[0] {
					t.Errorf("an unchanged line must be returned as it is")
				}
			}
			if string(out) != want {
				t.Errorf("\n got %q\nwant %q", out, want)
			}
		})
	}
	c := PlanCopy(m, cols, CopyFormat{})
	for _, bad := range []string{"1\t2\n", "1\t2\t3\t4\t5\t6\n"} {
		if _, err := c.MaskLine([]byte(bad)); !errors.Is(err, ErrCopyFields) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := PlanCopy(m, cols, CopyFormat{CSV: true}).MaskLine([]byte("1,\"open,2,3,4,5\n")); !errors.Is(err, ErrCopyFields) {
		t.Errorf("unterminated quote: %v", err)
	}
	hashed := PlanCopy(m, copyCols("tax_id"), CopyFormat{})
	out, _ := hashed.MaskLine([]byte("DE123\n"))
	if !strings.HasPrefix(string(out), "hash:") {
		t.Errorf("column rule on COPY: %q", out)
	}
	if PlanCopy(m, nil, CopyFormat{}) != nil {
		t.Error("no columns, nothing to plan")
	}
	// The engine's view: any protocols.Masker plans COPY lines, and one
	// that masks by column says so.
	var pm protocols.Masker = m
	mask := PlanCopy(pm, copyCols("a", "ssn"), CopyFormat{CSV: true, Delimiter: ';', Null: &null})
	if out, err := mask.MaskLine([]byte("jane@example.com;123-45-6789\n")); err != nil || string(out) != "\"[redacted:email]\";NULL\n" {
		t.Errorf("PlanCopy: %q %v", out, err)
	}
	if r, ok := pm.(protocols.ColumnRuler); !ok || !r.HasColumnRules() {
		t.Error("Masker does not offer HasColumnRules")
	}
}

func TestCopyNoAllocs(t *testing.T) {
	m := newMasker(t, detectAll(masking.Redact))
	c := PlanCopy(m, copyCols("id", "name", "note"), CopyFormat{})
	line := []byte("42\tJane Smith\tA sturdy oak table, seats 6-8 people\n")
	if n := testing.AllocsPerRun(100, func() { _, _ = c.MaskLine(line) }); n != 0 {
		t.Errorf("%v allocations per clean line", n)
	}
}

// TestCopyRoundTrip masks real COPY TO STDOUT output in text and CSV and
// loads the masked lines back with COPY FROM STDIN: PostgreSQL accepts them
// and no secret survives.
func TestCopyRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, testenv.PostgresURL(t, "postgres"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	const src = `SELECT * FROM (VALUES
	  (1, 'jane@example.com', E'tab\there, card 4111 1111 1111 1111', '123-45-6789', '{"e":"jane@example.com"}'::jsonb),
	  (2, 'Smith, "Jane"', E'multi\nline', NULL, '[]'::jsonb),
	  (3, '', E'back\\slash 10.0.0.1', '078-05-1120', NULL)) v(id, email, note, ssn, doc)`
	m := newMasker(t, masking.Config{Detect: []masking.DetectRule{{Entity: "all", Strategy: masking.Redact}}, Columns: []masking.ColumnRule{{Name: "ssn", Strategy: masking.Null}}})
	cols := copyCols("id", "email", "note", "ssn", "doc")
	if _, err := conn.Exec(ctx, "CREATE TEMP TABLE masked (id int, email text, note text, ssn text, doc jsonb)"); err != nil {
		t.Fatal(err)
	}
	for _, opt := range []struct {
		sql string
		f   CopyFormat
	}{{"", CopyFormat{}}, {"(FORMAT csv)", CopyFormat{CSV: true}}} {
		var out strings.Builder
		if _, err := conn.PgConn().CopyTo(ctx, &out, "COPY ("+src+") TO STDOUT "+opt.sql); err != nil {
			t.Fatal(err)
		}
		c := PlanCopy(m, cols, opt.f)
		var masked strings.Builder
		for _, line := range splitCopyRows(out.String(), opt.f.CSV) {
			o, err := c.MaskLine([]byte(line))
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			masked.Write(o)
		}
		for _, secret := range []string{"jane@example.com", "4111", "123-45-6789", "078-05-1120", "10.0.0.1"} {
			if strings.Contains(masked.String(), secret) {
				t.Errorf("%s: %q left in %q", opt.sql, secret, masked.String())
			}
		}
		if _, err := conn.Exec(ctx, "TRUNCATE masked"); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.PgConn().CopyFrom(ctx, strings.NewReader(masked.String()), "COPY masked FROM STDIN "+opt.sql); err != nil {
			t.Fatalf("%s: PostgreSQL rejects the masked COPY data %q: %v", opt.sql, masked.String(), err)
		}
		var n int
		var note string
		if err := conn.QueryRow(ctx, "SELECT count(*), max(note) FILTER (WHERE id = 2) FROM masked WHERE ssn IS NULL").Scan(&n, &note); err != nil || n != 3 || note != "multi\nline" {
			t.Errorf("%s: reloaded %d rows with NULL ssn (note %q): %v", opt.sql, n, note, err)
		}
	}
}

// splitCopyRows splits COPY output into rows as the protocol's CopyData
// messages carry them: at newlines outside CSV quotes.
func splitCopyRows(s string, csv bool) []string {
	var rows []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch {
		case csv && s[i] == '"':
			quoted = !quoted
		case s[i] == '\n' && !quoted:
			rows = append(rows, s[start:i+1])
			start = i + 1
		}
	}
	return rows
}
