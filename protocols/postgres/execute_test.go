package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/session"
)

// rowsSink collects what a frontend would answer with.
type rowsSink struct {
	cols []string
	rows []string
}

func (s *rowsSink) ForwardColumns(cols []protocols.Column) error {
	for _, c := range cols {
		s.cols = append(s.cols, c.Name)
	}
	return nil
}

func (s *rowsSink) ForwardRow(values [][]byte, _ bool) error {
	s.rows = append(s.rows, fmt.Sprintf("%q", values))
	return nil
}

// rowMaskerSource masks text and row values holding an '@'.
type rowMaskerSource struct{ atMasker }

func (m rowMaskerSource) For(protocols.Identity) protocols.Masker   { return m }
func (rowMaskerSource) Plan([]protocols.Column) protocols.RowMasker { return atRows{} }

type atRows struct{}

func (atRows) MaskRow(values [][]byte) bool {
	changed := false
	for i, v := range values {
		if bytes.IndexByte(v, '@') >= 0 {
			values[i], changed = []byte("[masked]"), true
		}
	}
	return changed
}

// TestFrontendExecutes runs commands the way the agent API and MCP do:
// admitted through the gateway, run with pgconn on a session the engine
// dials, each command checked, masked and recorded by the same flow as the
// wire's.
func TestFrontendExecutes(t *testing.T) {
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
	flow, err := gw.Admit(ctx, session.Caller{Protocol: protocols.Postgres, User: "alice", Secret: "alice-token", Connection: "main", Peer: "agent", TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := flow.Start(); err != nil {
		t.Fatal(err)
	}
	defer flow.Close("done")
	r, err := New().Dial(ctx, flow)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	sink := &rowsSink{}
	dec, err := flow.Execute(ctx, r, &protocols.Command{Protocol: protocols.Postgres, Kind: "query",
		Text: "SELECT 'ada@example.com' AS email, 42 AS n UNION ALL SELECT 'plain', NULL"}, sink)
	if err != nil || dec.Action != protocols.Allow {
		t.Fatalf("Execute = %+v, %v", dec, err)
	}
	if !slices.Equal(sink.cols, []string{"email", "n"}) || !slices.Equal(sink.rows, []string{`["[masked]" "42"]`, `["plain" ""]`}) {
		t.Fatalf("columns %q rows %q", sink.cols, sink.rows)
	}

	if _, err := flow.Execute(ctx, r, &protocols.Command{Protocol: protocols.Postgres, Kind: "query",
		Text: "CREATE TABLE frontend_t (a int)"}, sink); err != nil {
		t.Fatal(err)
	}
	dec, err = flow.Execute(ctx, r, &protocols.Command{Protocol: protocols.Postgres, Kind: "query", Text: "DROP TABLE frontend_t /*deny*/"}, sink)
	if err != nil || dec.Action != protocols.Deny {
		t.Fatalf("a denied command: %+v, %v", dec, err)
	}
	var ue *UpstreamError
	_, err = flow.Execute(ctx, r, &protocols.Command{Protocol: protocols.Postgres, Kind: "query",
		Text: "SELECT * FROM frontend_t WHERE a = 'x@example.com'"}, sink)
	if !errors.As(err, &ue) || ue.Code != "22P02" || strings.Contains(ue.Message, "x@example.com") {
		t.Fatalf("an upstream error: %v (want 22P02, masked)", err)
	}
	_, err = flow.Execute(ctx, r, &protocols.Command{Protocol: protocols.Postgres, Kind: "query", Text: "SELECT count(*) FROM frontend_t"}, sink)
	if err != nil {
		t.Fatalf("the table a denied DROP would have dropped: %v", err)
	}
	events := strings.Join(recs.recs[0].events, "\n")
	for _, want := range []string{"command query: [masked]", "decision deny", "result 22P02", "result SELECT 1"} {
		if !strings.Contains(events, want) {
			t.Errorf("the recording lacks %q:\n%s", want, events)
		}
	}
}

// TestFrontendParams: a command with parameters runs with the extended
// protocol, its values never part of the text: a value that reads as SQL
// stays a value, a wrong type is the database's error, and the session
// goes on.
func TestFrontendParams(t *testing.T) {
	testenv.Need(t, "PostgreSQL", testenv.PostgresAddr)
	conn := &protocols.Connection{Name: "main", Protocol: protocols.Postgres, Allow: protocols.Principals{"alice"},
		Upstream: &Upstream{Address: testenv.PostgresAddr, Database: testenv.PostgresDB(t), User: "postgres", TLS: UpstreamTLS{Mode: "disable"}}}
	gw, err := session.New(session.Options{Auth: testAuth{"alice": "alice-token"}, Classifier: keywordClassifier{},
		Connections: map[string]*protocols.Connection{"main": conn}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	flow, err := gw.Admit(ctx, session.Caller{Protocol: protocols.Postgres, User: "alice", Secret: "alice-token", Connection: "main", TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := flow.Start(); err != nil {
		t.Fatal(err)
	}
	defer flow.Close("done")
	r, err := New().Dial(ctx, flow)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	run := func(sql string, params ...engine.Param) (*rowsSink, error) {
		sink := &rowsSink{}
		cmd := &protocols.Command{Protocol: protocols.Postgres, Kind: "query", Text: sql,
			Payload: &protocols.Payload{Tool: "query", Arguments: engine.Arguments(map[string]string{"connection": "main"}, params)}}
		_, err := flow.Execute(ctx, r, cmd, sink)
		return sink, err
	}
	sink, err := run("SELECT $1::int + 1 AS n, $2::text AS s, $3::bool AS b, $4::text IS NULL AS missing",
		engine.Param{Kind: engine.ParamNumber, Text: "41"}, engine.Param{Kind: engine.ParamString, Text: "'); DROP TABLE x; --"},
		engine.Param{Kind: engine.ParamBool, Text: "false"}, engine.Param{Kind: engine.ParamNull})
	if err != nil || !slices.Equal(sink.rows, []string{`["42" "'); DROP TABLE x; --" "f" "t"]`}) {
		t.Fatalf("rows %q, %v", sink.rows, err)
	}
	var ue *UpstreamError
	if _, err := run("SELECT $1::int", engine.Param{Kind: engine.ParamString, Text: "1 OR 1=1"}); !errors.As(err, &ue) || ue.Code != "22P02" {
		t.Fatalf("a value that is not an integer: %v", err)
	}
	if _, err := run("SELECT $1, $2", engine.Param{Kind: engine.ParamString, Text: "a"}); !errors.As(err, &ue) || ue.Code != "08P01" {
		t.Fatalf("too few params: %v", err)
	}
	if sink, err := run("SELECT 'still here'"); err != nil || len(sink.rows) != 1 {
		t.Fatalf("after the errors: %q %v", sink.rows, err)
	}
}
