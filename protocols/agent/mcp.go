package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/airlock-gw/airlock/approvals"
	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/session"
)

// ProtocolVersions are the MCP revisions served: the current one and those
// before it that clients still speak (2025-03-26 is the first with
// Streamable HTTP, and many desktop and IDE clients still send it).
var ProtocolVersions = []string{"2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"}

// statelessVersion is the first revision without sessions (SEP-2575): its
// requests go to a stateless handler, the older ones' to a handler that
// keeps sessions, each of which keeps its sessions on connections.
const statelessVersion = "2026-07-28"

const instructions = `Airlock gives you the databases this identity may use, through policy, masking and recording.
Call list_connections, then describe_schema for a connection, then query with one SQL statement
(values may go in params, with $1 placeholders on PostgreSQL and ? on MySQL) or, on a Redis
connection, one command as its argument vector.
Sensitive values in results are masked. Some statements need a human's approval: the query answers
pending_approval with a request id; call wait_for_approval with it, and once it is approved send the
identical statement again: it runs once. A refused statement will not run however often it is sent.`

// mcpHandler serves /mcp: Streamable HTTP on the official SDK.
func (s *Server) mcpHandler() http.Handler {
	opts := func(stateless bool) *mcp.StreamableHTTPOptions {
		return &mcp.StreamableHTTPOptions{Stateless: stateless, SessionTimeout: s.idle, MaxRequestBodyBytes: maxBodyBytes,
			Logger: s.log.With("component", "mcp")}
	}
	stateful := mcp.NewStreamableHTTPHandler(s.mcpServer, opts(false))
	stateless := mcp.NewStreamableHTTPHandler(s.mcpServer, opts(true))
	route := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Mcp-Protocol-Version") >= statelessVersion {
			stateless.ServeHTTP(w, r)
			return
		}
		stateful.ServeHTTP(w, r)
	})
	// The caller is authenticated already; the SDK's middleware carries it
	// to the tools as TokenInfo, and its user id binds an MCP session to
	// the identity that opened it.
	verify := func(ctx context.Context, _ string, _ *http.Request) (*auth.TokenInfo, error) {
		c, ok := callerFrom(ctx)
		if !ok {
			return nil, auth.ErrInvalidToken
		}
		return &auth.TokenInfo{UserID: c.id.Name, Extra: map[string]any{"caller": c}}, nil
	}
	return auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(route)
}

// mcpServer returns the MCP server for the request's identity: its tools
// name only the connections it may use, and a tool it could not use is not
// listed. Identities that may use the same connections share one.
func (s *Server) mcpServer(r *http.Request) *mcp.Server {
	c, ok := callerFrom(r.Context())
	if !ok {
		return nil
	}
	conns := s.usable(c.id)
	names := make([]string, len(conns))
	for i, cn := range conns {
		names[i] = cn.Name
	}
	key := strings.Join(names, "\x00")
	s.mu.Lock()
	defer s.mu.Unlock()
	if srv := s.servers[key]; srv != nil {
		return srv
	}
	srv := s.newMCPServer(conns)
	s.servers[key] = srv
	return srv
}

// Tool inputs.
type (
	listInput     struct{}
	describeInput struct {
		Connection string `json:"connection" jsonschema:"the connection's name, from list_connections"`
	}
	queryInput struct {
		Connection string   `json:"connection" jsonschema:"the connection's name, from list_connections"`
		SQL        string   `json:"sql,omitempty" jsonschema:"one SQL statement (several separated by semicolons run as one transaction and the answer describes the last)"`
		Params     []any    `json:"params,omitempty" jsonschema:"values for the statement's placeholders ($1, $2 on PostgreSQL; ? on MySQL), sent apart from the SQL: strings, numbers, booleans or null"`
		Command    []string `json:"command,omitempty" jsonschema:"a Redis command as its argument vector, e.g. [\"HGETALL\", \"user:1\"]"`
		MaxRows    int      `json:"max_rows,omitempty" jsonschema:"most rows to return (default 200)"`
		MaxBytes   int      `json:"max_bytes,omitempty" jsonschema:"most bytes of values to return (default 262144)"`
	}
	waitInput struct {
		ApprovalID     string `json:"approval_id" jsonschema:"the approval request's id from a pending_approval answer"`
		TimeoutSeconds int    `json:"timeout_seconds,omitempty" jsonschema:"how long to wait for a decision, 1 to 300 (default 60)"`
	}
)

func boolPtr(b bool) *bool { return &b }

// newMCPServer builds the tools for an identity that may use conns.
func (s *Server) newMCPServer(conns []*protocols.Connection) *mcp.Server {
	srv := mcp.NewServer(&mcp.Implementation{Name: "airlock", Title: "Airlock", Version: "1"}, &mcp.ServerOptions{
		Instructions: instructions, SupportedProtocolVersions: ProtocolVersions, Logger: s.log.With("component", "mcp"),
	})
	mcp.AddTool(srv, &mcp.Tool{Name: "list_connections", Title: "List connections",
		Description: "Lists the databases this identity may use: each connection's name, protocol and description.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, DestructiveHint: boolPtr(false), IdempotentHint: true, OpenWorldHint: boolPtr(false)},
	}, s.toolList)
	if len(conns) == 0 {
		return srv
	}
	var names, described, sqlConns, redisConns []any
	for _, c := range conns {
		names = append(names, c.Name)
		if s.describes(c.Protocol) {
			described = append(described, c.Name)
		}
		if c.Protocol == protocols.Redis {
			redisConns = append(redisConns, c.Name)
		} else {
			sqlConns = append(sqlConns, c.Name)
		}
	}
	if len(described) > 0 {
		in := inputSchema[describeInput](described)
		mcp.AddTool(srv, &mcp.Tool{Name: "describe_schema", Title: "Describe a schema", InputSchema: in,
			Description: "Describes a connection's database: its tables and views with their columns, types and comments, so that you can write correct SQL; " +
				"for a Redis connection, its key patterns and their types as its configuration describes them.",
			Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, DestructiveHint: boolPtr(false), IdempotentHint: true, OpenWorldHint: boolPtr(false)},
		}, s.toolDescribe)
	}
	in := queryInputSchema(names, sqlConns, redisConns)
	mcp.AddTool(srv, &mcp.Tool{Name: "query", Title: "Run a statement", InputSchema: in,
		Description: "Runs one SQL statement, or one Redis command, on a connection and returns its rows or reply (masked) or its outcome. Policy decides what may run: " +
			"reads usually do; destructive statements may need a human's approval (the answer is then pending_approval) or be refused.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: false, DestructiveHint: boolPtr(true), IdempotentHint: false, OpenWorldHint: boolPtr(false)},
	}, s.toolQuery)
	mcp.AddTool(srv, &mcp.Tool{Name: "wait_for_approval", Title: "Wait for an approval",
		Description: "Waits for a reviewer's decision on an approval request from a pending_approval answer, sending progress while it waits. " +
			"When it is approved, send the identical statement again with query: it runs once.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, DestructiveHint: boolPtr(false), IdempotentHint: true, OpenWorldHint: boolPtr(false)},
	}, s.toolWait)
	return srv
}

// inputSchema is In's schema with its connection property limited to
// names.
func inputSchema[In any](names []any) *jsonschema.Schema {
	sc, err := jsonschema.For[In](nil)
	if err != nil {
		panic(fmt.Sprintf("agent: tool input schema: %v", err))
	}
	sc.Properties["connection"].Enum = names
	return sc
}

// queryInputSchema is the query tool's input schema for connections of
// each kind: sql (and params) for the SQL ones, command for the Redis ones,
// each required on its own kind's connections, and the properties of a
// kind the identity may not use left out.
func queryInputSchema(names, sqlConns, redisConns []any) *jsonschema.Schema {
	in := inputSchema[queryInput](names)
	list := func(conns []any) string {
		names := make([]string, len(conns))
		for i, c := range conns {
			names[i] = c.(string)
		}
		return strings.Join(names, ", ")
	}
	switch {
	case len(redisConns) == 0:
		delete(in.Properties, "command")
		in.Required = append(in.Required, "sql")
	case len(sqlConns) == 0:
		delete(in.Properties, "sql")
		delete(in.Properties, "params")
		in.Required = append(in.Required, "command")
	default:
		in.Properties["sql"].Description += "; for the SQL connections (" + list(sqlConns) + ")"
		in.Properties["params"].Description += "; SQL connections only"
		in.Properties["command"].Description += "; for the Redis connections (" + list(redisConns) + ")"
		in.AllOf = []*jsonschema.Schema{{
			If: &jsonschema.Schema{Required: []string{"connection"},
				Properties: map[string]*jsonschema.Schema{"connection": {Enum: redisConns}}},
			Then: &jsonschema.Schema{Required: []string{"command"}},
			Else: &jsonschema.Schema{Required: []string{"sql"}},
		}}
	}
	return in
}

// callerOf returns the authenticated caller of a tool call.
func callerOf(req *mcp.CallToolRequest) (*caller, error) {
	if req.Extra != nil && req.Extra.TokenInfo != nil {
		if c, ok := req.Extra.TokenInfo.Extra["caller"].(*caller); ok {
			return c, nil
		}
	}
	return nil, errors.New("unauthenticated tool call")
}

func (s *Server) toolList(_ context.Context, req *mcp.CallToolRequest, _ listInput) (*mcp.CallToolResult, *ConnectionList, error) {
	c, err := callerOf(req)
	if err != nil {
		return nil, nil, err
	}
	l := s.connectionList(c.id)
	var b strings.Builder
	fmt.Fprintf(&b, "%d connections:", len(l.Connections))
	for _, cn := range l.Connections {
		fmt.Fprintf(&b, "\n- %s (%s)", cn.Name, cn.Protocol)
		if cn.Description != "" {
			b.WriteString(": " + cn.Description)
		}
	}
	return textResult(b.String(), false), &l, nil
}

func (s *Server) toolDescribe(ctx context.Context, req *mcp.CallToolRequest, in describeInput) (*mcp.CallToolResult, *SchemaAnswer, error) {
	c, conn, err := s.toolConnection(req, in.Connection)
	if err != nil {
		return nil, nil, err
	}
	if a := s.configured(c, conn); a != nil {
		return textResult(renderSchema(a), false), a, nil
	}
	f, err := s.flowFor(ctx, req.Session, c, conn)
	if err != nil {
		return nil, nil, toolError(err)
	}
	a, err := s.describe(ctx, f, conn, "mcp:describe_schema", true)
	var ref *refusal
	var ue engine.UpstreamError
	switch {
	case errors.As(err, &ref):
		return nil, nil, errors.New(ref.answer.Message)
	case errors.As(err, &ue):
		return nil, nil, fmt.Errorf("the database answered the catalog query with error %s: %s", ue.UpstreamCode(), ue.UpstreamMessage())
	case err != nil:
		return nil, nil, toolError(err)
	}
	return textResult(renderSchema(a), false), a, nil
}

func (s *Server) toolQuery(ctx context.Context, req *mcp.CallToolRequest, in queryInput) (*mcp.CallToolResult, *Answer, error) {
	c, conn, err := s.toolConnection(req, in.Connection)
	if err != nil {
		return nil, nil, err
	}
	q := queryRequest{SQL: in.SQL, Command: in.Command, MaxRows: in.MaxRows, MaxBytes: in.MaxBytes}
	if len(in.Params) > 0 {
		// The params as the client wrote them: in is decoded from a map of
		// any, whose numbers are float64s (an id past 2^53 would change).
		var raw struct {
			Params []json.RawMessage `json:"params"`
		}
		if err := json.Unmarshal(req.Params.Arguments, &raw); err != nil {
			return nil, nil, err
		}
		q.Params = raw.Params
	}
	cmd, l, msg := s.command(conn, q)
	if msg != "" {
		return nil, nil, errors.New(msg)
	}
	cmd.Kind = "mcp:query"
	f, err := s.flowFor(ctx, req.Session, c, conn)
	if err != nil {
		return nil, nil, toolError(err)
	}
	a, err := s.run(ctx, f, conn, cmd, l, true)
	if err != nil {
		return nil, nil, toolError(err)
	}
	return textResult(renderAnswer(a), a.Status == statusRefused || a.Status == statusFailed), a, nil
}

// progressEvery is how often wait_for_approval reports that it waits.
const progressEvery = 2 * time.Second

func (s *Server) toolWait(ctx context.Context, req *mcp.CallToolRequest, in waitInput) (*mcp.CallToolResult, *ApprovalState, error) {
	c, err := callerOf(req)
	if err != nil {
		return nil, nil, err
	}
	timeout := time.Duration(in.TimeoutSeconds) * time.Second
	switch {
	case in.TimeoutSeconds == 0:
		timeout = time.Minute
	case in.TimeoutSeconds < 0 || in.TimeoutSeconds > 300:
		return nil, nil, errors.New("timeout_seconds must be from 1 to 300")
	}
	if s.approvals == nil {
		return nil, nil, errors.New("no approval request has this id")
	}
	start := time.Now()
	token := req.Params.GetProgressToken()
	for {
		left := timeout - time.Since(start)
		r, err := s.approvals.Wait(ctx, c.id, in.ApprovalID, max(0, min(progressEvery, left)))
		switch {
		case errors.Is(err, approvals.ErrNotFound), errors.Is(err, approvals.ErrForbidden):
			return nil, nil, fmt.Errorf("no approval request %q of this identity exists", in.ApprovalID)
		case err != nil:
			return nil, nil, toolError(err)
		}
		if r.Status != approvals.StatusPending || time.Since(start) >= timeout {
			st := s.approvalState(r)
			if r.Status == approvals.StatusPending {
				st.Message = fmt.Sprintf("Still pending after %s: call wait_for_approval again to keep waiting, or ask a reviewer to look at %s.",
					timeout, st.ReviewURL)
			}
			s.noteWait(req.Session, r, in)
			return textResult(st.Message, false), st, nil
		}
		if token != nil {
			waited := time.Since(start)
			_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: token,
				Progress: waited.Seconds(), Total: timeout.Seconds(),
				Message: fmt.Sprintf("approval request %s is pending; waited %s of %s for a reviewer", r.ID, waited.Round(time.Second), timeout)})
		}
	}
}

// toolConnection resolves a tool call's caller and connection.
func (s *Server) toolConnection(req *mcp.CallToolRequest, name string) (*caller, *protocols.Connection, error) {
	c, err := callerOf(req)
	if err != nil {
		return nil, nil, err
	}
	conn := s.connection(c.id, name)
	if conn == nil {
		return nil, nil, fmt.Errorf("connection %q does not exist or this identity may not use it; list_connections names the usable ones", name)
	}
	return c, conn, nil
}

// toolError words an error that is not a query's outcome for the model,
// without what it may not see (an upstream's address, a file's path).
func toolError(err error) error {
	if le := (*session.LimitError)(nil); errors.As(err, &le) {
		return errors.New(limitDetail(le))
	}
	switch {
	case errors.Is(err, errUnreachable):
		if _, _, _, detail, ok := upstreamProblem(err); ok {
			return errors.New(detail)
		}
		return errUnreachable
	case errors.Is(err, errEnded):
		return errEnded
	case errors.Is(err, session.ErrNoConnection):
		return errors.New("the connection does not exist or this identity may not use it")
	case errors.Is(err, session.ErrAuthFailed):
		return errors.New("the token was not accepted")
	case errors.Is(err, session.ErrTLSRequired):
		return session.ErrTLSRequired
	case errors.Is(err, session.ErrRecordingUnavailable), errors.Is(err, session.ErrRecordingFailed):
		return errors.New("the session could not be recorded, so nothing ran; try again later")
	}
	return errors.New("the call failed inside Airlock")
}

func textResult(text string, isError bool) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}, IsError: isError}
}

// renderAnswer is an Answer as text: its message, then its rows as a
// table with one line per row.
func renderAnswer(a *Answer) string {
	var b strings.Builder
	b.WriteString(a.Message)
	if r, ok := a.Reply.(json.RawMessage); ok {
		b.WriteString("\n\n")
		b.Write(r)
		return b.String()
	}
	if len(a.Columns) == 0 {
		return b.String()
	}
	b.WriteString("\n\n")
	for i, c := range a.Columns {
		if i > 0 {
			b.WriteString(" | ")
		}
		b.WriteString(c.Name)
	}
	for _, row := range a.Rows {
		b.WriteByte('\n')
		for i, v := range row {
			if i > 0 {
				b.WriteString(" | ")
			}
			if v == nil {
				b.WriteString("NULL")
			} else {
				b.WriteString(strings.ReplaceAll(*v, "\n", `\n`))
			}
		}
	}
	return b.String()
}

// renderSchema is a schema as text, one line per table and per column.
func renderSchema(a *SchemaAnswer) string {
	var b strings.Builder
	b.WriteString(a.Message)
	for _, k := range a.Keys {
		fmt.Fprintf(&b, "\n\nkeys %s (%s)", k.Pattern, k.Type)
		if k.Description != "" {
			b.WriteString(" -- " + k.Description)
		}
		if len(k.Fields) > 0 {
			b.WriteString("\n  fields: " + strings.Join(k.Fields, ", "))
		}
	}
	for _, t := range a.Tables {
		name := t.Name
		if t.Schema != "" {
			name = t.Schema + "." + t.Name
		}
		fmt.Fprintf(&b, "\n\n%s %s", t.Kind, name)
		if t.Comment != "" {
			b.WriteString(" -- " + t.Comment)
		}
		for _, c := range t.Columns {
			fmt.Fprintf(&b, "\n  %s %s", c.Name, c.Type)
			if !c.Nullable {
				b.WriteString(" NOT NULL")
			}
			if c.Comment != "" {
				b.WriteString(" -- " + c.Comment)
			}
		}
	}
	return b.String()
}

// mcpUse is what one MCP session holds: its sessions on connections.
type mcpUse struct {
	flows  map[string]*flow
	ended  bool
	caller *caller
}

// flowFor returns the MCP session's session on conn, opening it at its
// first use; it ends when the MCP session does.
func (s *Server) flowFor(ctx context.Context, ss *mcp.ServerSession, c *caller, conn *protocols.Connection) (*flow, error) {
	s.mu.Lock()
	u := s.sessions[ss]
	if u == nil {
		u = &mcpUse{flows: map[string]*flow{}, caller: c}
		s.sessions[ss] = u
		go s.endWith(ss, u)
	}
	if u.ended {
		s.mu.Unlock()
		return nil, errEnded
	}
	if f := u.flows[conn.Name]; f != nil && !f.isEnded() {
		s.mu.Unlock()
		return f, nil
	}
	s.mu.Unlock()
	// Opening dials nothing yet, but it records and may authenticate
	// against an OIDC issuer: not under the lock.
	f, err := s.open(ctx, c, conn)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if other := u.flows[conn.Name]; (other != nil && !other.isEnded()) || u.ended {
		go f.end("opened twice")
		if u.ended {
			return nil, errEnded
		}
		return other, nil
	}
	u.flows[conn.Name] = f
	return f, nil
}

// endWith ends an MCP session's sessions when it closes.
func (s *Server) endWith(ss *mcp.ServerSession, u *mcpUse) {
	_ = ss.Wait()
	s.mu.Lock()
	u.ended = true
	delete(s.sessions, ss)
	flows := u.flows
	s.mu.Unlock()
	for _, f := range flows {
		f.end("MCP session ended")
	}
}

// closeSessions closes every MCP session (their sessions on connections
// end with them) and waits for those to end.
func (s *Server) closeSessions(reason string) {
	s.mu.Lock()
	var all []*mcp.ServerSession
	for _, srv := range s.servers {
		for ss := range srv.Sessions() {
			all = append(all, ss)
		}
	}
	var flows []*flow
	for _, u := range s.sessions {
		u.ended = true
		for _, f := range u.flows {
			flows = append(flows, f)
		}
	}
	s.mu.Unlock()
	for _, ss := range all {
		_ = ss.Close()
	}
	for _, f := range flows {
		f.end(reason)
	}
}

// noteWait records a wait_for_approval call in the MCP session's session
// on the request's connection, if it has one, with the decision it saw.
func (s *Server) noteWait(ss *mcp.ServerSession, r *approvals.Request, in waitInput) {
	s.mu.Lock()
	var f *flow
	if u := s.sessions[ss]; u != nil {
		f = u.flows[r.Connection]
	}
	s.mu.Unlock()
	if f == nil {
		return
	}
	args, _ := json.Marshal(in)
	f.note(&protocols.Command{Protocol: r.Protocol, Kind: "mcp:wait_for_approval",
		Payload: &protocols.Payload{Tool: "wait_for_approval", Arguments: args}},
		protocols.Result{Tag: "APPROVAL " + strings.ToUpper(string(r.Status))})
}
