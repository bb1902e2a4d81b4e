package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/session"
)

// collectSink hands each row to a function, as a frontend's Query does.
type collectSink struct{ row func([][]byte) error }

func (s collectSink) ForwardRow(values [][]byte, _ bool) error { return s.row(values) }

// TestDescribeSchema reads a database's tables, views, columns, types and
// comments through the session flow: the catalog query is recorded like a
// caller's command and its rows are masked.
func TestDescribeSchema(t *testing.T) {
	testenv.Need(t, "PostgreSQL", testenv.PostgresAddr)
	db := testenv.PostgresDB(t)
	recs := &memRecorders{}
	conn := &protocols.Connection{Name: "main", Protocol: protocols.Postgres, Allow: protocols.Principals{"alice"},
		Policy: riskPolicy{}, Masking: rowMaskerSource{},
		Upstream: &Upstream{Address: testenv.PostgresAddr, Database: db, User: "postgres", TLS: UpstreamTLS{Mode: "disable"}}}
	gw, err := session.New(session.Options{Auth: testAuth{"alice": "alice-token"}, Classifier: keywordClassifier{},
		Recorders: recs, Connections: map[string]*protocols.Connection{"main": conn}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	flow, err := gw.Admit(ctx, session.Caller{Protocol: protocols.Postgres, User: "alice", Secret: "alice-token", Connection: "main", Local: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := flow.Start(); err != nil {
		t.Fatal(err)
	}
	defer flow.Close("done")
	e := New()
	r, err := e.Dial(ctx, flow)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, stmt := range []string{
		"CREATE SCHEMA shop",
		"CREATE TABLE shop.customers (id bigint PRIMARY KEY, email varchar(200) NOT NULL, tags text[])",
		"COMMENT ON TABLE shop.customers IS 'who buys; owner ops@example.com'",
		"COMMENT ON COLUMN shop.customers.email IS 'primary address'",
		"CREATE VIEW public.recent AS SELECT id FROM shop.customers",
		"CREATE TABLE public.events (at timestamptz) PARTITION BY RANGE (at)",
		"CREATE TABLE public.events_2026 PARTITION OF public.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
	} {
		if _, err := flow.Execute(ctx, r, &protocols.Command{Protocol: protocols.Postgres, Kind: "query", Text: stmt}, collectSink{}); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	query := func(ctx context.Context, cmd *protocols.Command, row func([][]byte) error) error {
		dec, err := flow.Execute(ctx, r, cmd, collectSink{row})
		if err == nil && dec.Action != protocols.Allow {
			err = errors.New(dec.Reason)
		}
		return err
	}
	s, err := e.DescribeSchema(ctx, query)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tb := range s.Tables {
		names = append(names, tb.Schema+"."+tb.Name+":"+tb.Kind)
	}
	if want := []string{"public.events:partitioned table", "public.recent:view", "shop.customers:table"}; !slices.Equal(names, want) {
		t.Fatalf("tables %q, want %q", names, want)
	}
	c := s.Tables[2]
	if c.Comment != "[masked]" {
		t.Errorf("the table's comment holds an address and was not masked: %q", c.Comment)
	}
	want := []engine.Column{
		{Name: "id", Type: "bigint"},
		{Name: "email", Type: "character varying(200)", Comment: "primary address"},
		{Name: "tags", Type: "text[]", Nullable: true},
	}
	if !slices.Equal(c.Columns, want) {
		t.Errorf("columns %+v, want %+v", c.Columns, want)
	}
	events := strings.Join(recs.recs[0].events, "\n")
	if !strings.Contains(events, "command query: SELECT n.nspname") {
		t.Errorf("the catalog query is not recorded:\n%s", events)
	}
}
