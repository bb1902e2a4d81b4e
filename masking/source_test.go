package masking

import (
	"bytes"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestExemptions(t *testing.T) {
	cfg := detectAll(Redact)
	cfg.Exempt = protocols.Principals{"group:dba", "auditor"}
	src, err := New(cfg, "orders", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		id     protocols.Identity
		masked bool
	}{
		{protocols.Identity{Name: "alice", Groups: []string{"dba"}}, false},
		{protocols.Identity{Name: "auditor"}, false},
		{protocols.Identity{Name: "agent-7", Groups: []string{"agents"}}, true},
		{protocols.Identity{Name: "dba"}, true}, // a name is not a group
		{protocols.Identity{}, true},
	}
	for _, tc := range cases {
		m := src.For(tc.id)
		if (m != nil) != tc.masked {
			t.Errorf("%+v: masker %v, want masked %v", tc.id, m, tc.masked)
		}
	}
	empty, err := New(Config{Exempt: protocols.Principals{"group:dba"}}, "orders", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m := empty.For(protocols.Identity{Name: "agent"}); m != nil {
		t.Error("a connection that masks nothing must yield a nil Masker")
	}
	var nilSrc *Source
	if nilSrc.For(protocols.Identity{}) != nil {
		t.Error("a nil Source yields nil")
	}
}

func TestColumnRuleMatching(t *testing.T) {
	m := newMasker(t, Config{Columns: []ColumnRule{
		{TableColumn: "public.users.ssn", Strategy: Null},
		{TableColumn: "customers.card_*", Strategy: Null},
		{Name: "*_token", Strategy: Null},
		{Name: "api?key", Strategy: Null},
	}})
	cases := []struct {
		name, table string
		masked      bool
	}{
		{"ssn", "public.users", true},
		{"SSN", "PUBLIC.USERS", true},
		{"ssn", "users", true},          // no schema in the metadata
		{"ssn", "", true},               // unknown source: fail closed
		{"ssn", "archive.users", false}, // another schema
		{"ssn", "public.people", false},
		{"card_number", "sales.customers", true},
		{"card_number", "customers", true},
		{"card_number", "orders", false},
		{"refresh_token", "", true},
		{"refresh_token", "x.y", true},
		{"token_type", "", false},
		{"api_key", "", true},
		{"apikey", "", false},
		{"old/refresh_token", "", true}, // '/' is an ordinary character
	}
	for _, tc := range cases {
		col := protocols.Column{Name: tc.name, Table: tc.table, Type: protocols.TypeText}
		out, _ := maskOne(t, m, col, []byte("v"))
		if (out == nil) != tc.masked {
			t.Errorf("%s.%s: masked %v, want %v", tc.table, tc.name, out == nil, tc.masked)
		}
	}
}

func TestRulePrecedence(t *testing.T) {
	m := newMasker(t, Config{HashKey: "0123456789abcdef0123", Detect: []DetectRule{
		{Entity: "email", Strategy: Hash},
		{Entity: "pii", Strategy: Partial}, // email keeps its own rule
	}})
	out := string(m.Text([]byte("jane@example.com 4111 1111 1111 1111")))
	if !strings.HasPrefix(out, "hash:") || !strings.HasSuffix(out, " **** **** **** 1111") {
		t.Errorf("got %q", out)
	}
	// A column rule wins over detection on that column.
	m = newMasker(t, Config{Detect: []DetectRule{{Entity: "all", Strategy: Redact}}, Columns: []ColumnRule{{Name: "contact", Strategy: Partial}}})
	got, _ := maskOne(t, m, protocols.Column{Name: "contact", Type: protocols.TypeText}, []byte("jane@example.com"))
	if string(got) != "***********e.com" {
		t.Errorf("column rule: %q", got)
	}
}

func TestPartial(t *testing.T) {
	cases := []struct {
		in   string
		keep int
		want string
	}{
		{"4111 1111 1111 1111", 4, "**** **** **** 1111"},
		{"4111-1111-1111-1111", 4, "****-****-****-1111"},
		{"+1 (212) 555-0100", 4, "+* (***) ***-0100"},
		{"123-45-6789", 4, "***-**-6789"},
		{"abcd", 4, "**cd"}, // keep is capped at half
		{"ab", 4, "*b"},
		{"a", 4, "*"},
		{"hunter2", 0, "*******"},
		{"pa\"ss\\wd", 4, "****s*wd"}, // quotes and backslashes are never kept
		{"héllo wörld", 3, "***** **rld"},
		{"ab\xffcd", 2, "***cd"},
	}
	for _, tc := range cases {
		if got := string(appendPartial(nil, []byte(tc.in), tc.keep)); got != tc.want {
			t.Errorf("partial(%q, %d) = %q, want %q", tc.in, tc.keep, got, tc.want)
		}
	}
	for in, want := range map[string]string{
		"jane.doe@example.com": "j***@example.com",
		"é@exämple.de":         "é***@exämple.de",
		"\"x\"@example.com":    "****@example.com",
	} {
		if got := string(appendEmailPartial(nil, []byte(in))); got != want {
			t.Errorf("email partial(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHashKeyed(t *testing.T) {
	a := newMasker(t, Config{HashKey: "0123456789abcdef-A", Detect: []DetectRule{{Entity: "email", Strategy: Hash}}})
	b := newMasker(t, Config{HashKey: "0123456789abcdef-B", Detect: []DetectRule{{Entity: "email", Strategy: Hash}}})
	in := []byte("jane@example.com")
	ha, hb := string(a.Text(in)), string(b.Text(in))
	if ha == hb || ha != string(a.Text(in)) || len(ha) != len(hashPrefix)+hashHex {
		t.Errorf("hash must be keyed and stable: %q %q", ha, hb)
	}
}

func TestText(t *testing.T) {
	m := newMasker(t, detectAll(Null))
	in := []byte("ERROR: duplicate key value violates unique constraint \"users_email_key\"")
	if out := m.Text(in); &out[0] != &in[0] {
		t.Error("Text must return its input when nothing matched")
	}
	in = []byte(`DETAIL: Key (email)=(jane@example.com) already exists.`)
	if got := string(m.Text(in)); got != `DETAIL: Key (email)=([redacted:email]) already exists.` {
		t.Errorf("null strategy in free text must redact: %q", got)
	}
	// COPY text lines: tabs, \N and escapes survive.
	line := []byte("1\tjane@example.com\t\\N\t4111 1111 1111 1111\tJane\\tSmith\n")
	want := "1\t[redacted:email]\t\\N\t[redacted:payment_card]\tJane\\tSmith\n"
	if got := string(m.Text(line)); got != want {
		t.Errorf("COPY line: %q", got)
	}
	if newMasker(t, Config{Columns: []ColumnRule{{Name: "x", Strategy: Null}}}).HasColumnRules() != true {
		t.Error("HasColumnRules")
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	met := NewMetrics(reg)
	cfg := detectAll(Redact)
	cfg.Columns = []ColumnRule{{Name: "ssn", Strategy: Null}}
	src, err := New(cfg, "orders", met, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := src.For(protocols.Identity{Name: "agent"})
	rm := m.Plan([]protocols.Column{textCol, {Name: "ssn", Type: protocols.TypeText}})
	rm.MaskRow([][]byte{[]byte("a@example.com b@example.com"), []byte("123-45-6789")})
	rm.MaskRow([][]byte{[]byte("plain"), nil})
	m.Text([]byte("card 4111111111111111"))
	for entity, want := range map[string]float64{"email": 2, "column": 1, "payment_card": 1, "phone": 0} {
		var d dto.Metric
		if err := met.Masked.WithLabelValues("orders", entity).Write(&d); err != nil {
			t.Fatal(err)
		}
		if got := d.GetCounter().GetValue(); got != want {
			t.Errorf("%s: %v, want %v", entity, got, want)
		}
	}
	fams, err := reg.Gather()
	if err != nil || len(fams) != 1 {
		t.Fatalf("gather: %v %d", err, len(fams))
	}
	if n := len(fams[0].GetMetric()); n != len(groupPII)+len(groupSecrets)+1 {
		t.Errorf("series pre-created: %d", n)
	}
}

// braceQuotes is a stand-in for a protocol's message forms: "{cols|values}"
// quotes the values of the named columns, "{*|values}" a whole row. It
// also returns two quotes out of the message's bounds, which the core must
// ignore.
type braceQuotes struct{}

func (braceQuotes) Codec(protocols.Column, bool) Codec { return nil }

func (braceQuotes) AppendQuotes(dst []Quote, msg []byte) []Quote {
	for k := 0; ; {
		open := bytes.IndexByte(msg[k:], '{')
		if open < 0 {
			return append(dst, Quote{Start: -1, End: 3}, Quote{Start: 0, End: len(msg) + 1, Row: true})
		}
		open += k
		bar := bytes.IndexByte(msg[open:], '|')
		end := bytes.IndexByte(msg[open:], '}')
		if bar < 0 || end < bar {
			return dst
		}
		names := string(msg[open+1 : open+bar])
		dst = append(dst, Quote{Start: open + bar + 1, End: open + end, Columns: names, Row: names == "*"})
		k = open + end
	}
}

// TestTextColumnValues checks that the values a dialect finds quoted in
// free text are masked for rule-masked columns, and only with a dialect.
func TestTextColumnValues(t *testing.T) {
	cfg := Config{
		Detect:  []DetectRule{{Entity: "email", Strategy: Redact}},
		Columns: []ColumnRule{{Name: "ssn", Strategy: Null}, {TableColumn: "public.users.tax_id", Strategy: Hash}},
		HashKey: "0123456789abcdef0123",
	}
	src, err := New(cfg, "test", nil, braceQuotes{})
	if err != nil {
		t.Fatal(err)
	}
	m := src.m
	cases := []struct{ in, want string }{
		{"dup {ssn|123-45-6789} here", "dup {ssn|[redacted]} here"},
		{`{email, "SSN"|jane@example.com, 123-45-6789}`, "{email, \"SSN\"|[redacted]}"},
		{"{`tax_id`|DE123}", "{`tax_id`|[redacted]}"},
		{"{name|Jane (jane@example.com)}", "{name|Jane ([redacted:email])}"},
		{"{*|7, null, 123-45-6789}\nnext", "{*|[redacted]}\nnext"},
		{"{a|x} {ssn|y} {b|jane@example.com}", "{a|x} {ssn|[redacted]} {b|[redacted:email]}"},
		{"mail jane@example.com{ssn|1}", "mail [redacted:email]{ssn|[redacted]}"},
		{"{ssn|}", "{ssn|}"},
	}
	for _, tc := range cases {
		if got := string(m.Text([]byte(tc.in))); got != tc.want {
			t.Errorf("Text(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
	plain := newMasker(t, cfg)
	in := "DETAIL: Key (ssn)=(123-45-6789) already exists. {ssn|123-45-6789}"
	if got := string(plain.Text([]byte(in))); got != in {
		t.Errorf("without a dialect messages are only scanned: %q", got)
	}
}

// TestConcurrentUse shares one Masker between goroutines, as sessions do:
// Text from any goroutine, a RowMasker per goroutine.
func TestConcurrentUse(t *testing.T) {
	reg := prometheus.NewRegistry()
	src, err := New(detectAll(Partial), "c", NewMetrics(reg), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := src.For(protocols.Identity{Name: "agent"})
	done := make(chan string, 8)
	for g := 0; g < 8; g++ {
		go func() {
			rm := m.Plan([]protocols.Column{textCol, jsonCol})
			for i := 0; i < 200; i++ {
				row := [][]byte{[]byte("mail jane@example.com"), []byte(`{"c":"4111 1111 1111 1111"}`)}
				rm.MaskRow(row)
				if string(row[0]) != "mail j***@example.com" || string(row[1]) != `{"c":"**** **** **** 1111"}` {
					done <- string(row[0]) + " " + string(row[1])
					return
				}
				if got := string(m.Text([]byte("ip 10.0.0.1"))); got != "ip **.*.0.1" {
					done <- got
					return
				}
			}
			done <- ""
		}()
	}
	for g := 0; g < 8; g++ {
		if msg := <-done; msg != "" {
			t.Error(msg)
		}
	}
}
