package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
)

// SchemaAnswer is a connection's schema, the answer of GET
// /v1/connections/{name}/schema and describe_schema.
type SchemaAnswer struct {
	Connection string         `json:"connection"`
	Tables     []engine.Table `json:"tables"`
	// Keys are a Redis connection's key patterns, as its configuration
	// describes them.
	Keys      []engine.Key `json:"keys,omitempty" jsonschema:"a Redis connection's key patterns and their types, from its configuration"`
	Truncated bool         `json:"truncated" jsonschema:"true when tables were left out to stay within the size limit"`
	Message   string       `json:"message"`
}

// errNoSchema: the connection's engine cannot describe a schema.
var errNoSchema = errors.New("this connection's engine cannot describe its schema")

// describes reports whether p's engine describes its connections, by
// querying them or from their configuration.
func (s *Server) describes(p protocols.Protocol) bool {
	switch s.executors[p].(type) {
	case engine.Describer, engine.ConfigDescriber:
		return true
	}
	return false
}

// configured is the schema of conn as its configuration describes it, or
// nil when its engine reads schemas from the database. Nothing runs
// upstream, so no session is opened; the read is logged.
func (s *Server) configured(c *caller, conn *protocols.Connection) *SchemaAnswer {
	d, ok := s.executors[conn.Protocol].(engine.ConfigDescriber)
	if !ok {
		return nil
	}
	s.log.Info("agent: schema from the configuration", "identity", c.id.Name, "connection", conn.Name)
	schema := d.DescribeConfigured(conn)
	a := &SchemaAnswer{Connection: conn.Name, Tables: schema.Tables, Keys: schema.Keys}
	if a.Tables == nil {
		a.Tables = []engine.Table{}
	}
	switch {
	case len(a.Keys) > 0:
		a.Message = fmt.Sprintf("%d key patterns, as the connection's configuration describes them (Airlock does not scan the keyspace).", len(a.Keys))
	case len(a.Tables) == 0:
		a.Message = "The connection's configuration describes no key patterns, and Airlock does not scan the keyspace to find them: " +
			"ask an administrator to describe them (keys: in the connection's upstream block), or look with SCAN and a MATCH pattern where policy allows it."
	default:
		a.Message = fmt.Sprintf("%d tables and views.", len(a.Tables))
	}
	return a
}

// refusal is a catalog query the policy refused or sent to review.
type refusal struct{ answer *Answer }

func (r *refusal) Error() string { return r.answer.Message }

// describe reads conn's schema through f, its catalog queries recorded
// with tool as their payload's tool.
func (s *Server) describe(ctx context.Context, f *flow, conn *protocols.Connection, kind string, tool bool) (*SchemaAnswer, error) {
	d, ok := s.executors[conn.Protocol].(engine.Describer)
	if !ok {
		return nil, errNoSchema
	}
	payload, _ := json.Marshal(map[string]string{"connection": conn.Name})
	query := func(ctx context.Context, cmd *protocols.Command, row func([][]byte) error) error {
		cmd.Kind = kind
		cmd.Payload = &protocols.Payload{Tool: "describe_schema", Arguments: payload}
		dec, err := f.execute(ctx, cmd, rowFunc(row), nil)
		if err != nil {
			if !isUpstream(err) {
				f.end("command failed: " + err.Error())
			}
			return err
		}
		if dec.Action != protocols.Allow {
			a, _ := s.answer(conn.Name, nil, dec, nil, tool)
			return &refusal{a}
		}
		return nil
	}
	schema, err := d.DescribeSchema(ctx, query)
	if err != nil {
		return nil, err
	}
	return fitSchema(conn.Name, schema.Tables, DefaultMaxBytes), nil
}

// fitSchema keeps whole tables, in order, while their JSON stays within
// limit bytes.
func fitSchema(conn string, tables []engine.Table, limit int) *SchemaAnswer {
	a := &SchemaAnswer{Connection: conn, Tables: []engine.Table{}}
	size := 0
	for _, t := range tables {
		b, _ := json.Marshal(t)
		if size+len(b) > limit {
			a.Truncated = true
			break
		}
		size += len(b) + 1
		a.Tables = append(a.Tables, t)
	}
	a.Message = fmt.Sprintf("%d tables and views.", len(a.Tables))
	if a.Truncated {
		a.Message = fmt.Sprintf("The first %d of %d tables and views (the rest left out to stay within %d KiB); query the catalog for the others.",
			len(a.Tables), len(tables), limit>>10)
	}
	return a
}

// rowFunc is a session.RowSink that hands each row to a function.
type rowFunc func([][]byte) error

func (f rowFunc) ForwardRow(values [][]byte, _ bool) error { return f(values) }

func (s *Server) schema(w http.ResponseWriter, r *http.Request) {
	c, _ := callerFrom(r.Context())
	conn := s.connection(c.id, r.PathValue("name"))
	if conn == nil {
		notFound(w, r.PathValue("name"))
		return
	}
	if a := s.configured(c, conn); a != nil {
		writeJSON(w, http.StatusOK, a)
		return
	}
	if _, ok := s.executors[conn.Protocol].(engine.Describer); !ok {
		writeProblem(w, http.StatusNotImplemented, "schema-unsupported", "Schema not available", errNoSchema.Error())
		return
	}
	f, err := s.open(r.Context(), c, conn)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer f.end("request done")
	a, err := s.describe(r.Context(), f, conn, "api:describe_schema", false)
	var ref *refusal
	var ue engine.UpstreamError
	switch {
	case errors.As(err, &ref):
		writeProblem(w, http.StatusForbidden, "schema-refused", "Schema query refused", ref.answer.Message)
	case errors.As(err, &ue):
		writeProblem(w, http.StatusBadGateway, "schema-failed", "Schema query failed",
			fmt.Sprintf("the database answered the catalog query with error %s: %s", ue.UpstreamCode(), ue.UpstreamMessage()))
	case err != nil:
		s.fail(w, r, err)
	default:
		writeJSON(w, http.StatusOK, a)
	}
}
