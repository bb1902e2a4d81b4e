package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/airlock-gw/airlock/approvals"
	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/session"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	api := func(pattern, method string, h http.HandlerFunc) {
		mux.Handle(pattern, s.authenticate(allow(method, h)))
	}
	api("/v1/connections", http.MethodGet, s.listConnections)
	api("/v1/connections/{name}/schema", http.MethodGet, s.schema)
	api("/v1/connections/{name}/query", http.MethodPost, s.query)
	api("/v1/approvals/{id}", http.MethodGet, s.approval)
	mux.Handle("/v1/openapi.json", allow(http.MethodGet, serveOpenAPI))
	mux.Handle("/.well-known/oauth-protected-resource", http.HandlerFunc(s.resourceMetadata))
	mux.Handle("/.well-known/oauth-protected-resource/{rest...}", http.HandlerFunc(s.resourceMetadata))
	mux.Handle("/mcp", s.authenticate(s.mcpHandler()))
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, "not-found", "Not found", "no such endpoint; the API is described at /v1/openapi.json and MCP is served at /mcp")
	}))
	if len(s.mounts) == 0 {
		return mux
	}
	// Engines' requests go to them before the mux, which would redirect
	// paths it cleans: a proxied path is the upstream's to read.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, m := range s.mounts {
			if (m.Host != nil && m.Host(r.Host)) || (m.Prefix != "" && strings.HasPrefix(r.URL.Path, m.Prefix)) {
				m.Handler.ServeHTTP(w, r)
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// allow answers 405 with a problem for every method but method.
func allow(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", method)
			writeProblem(w, http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed", "use "+method)
			return
		}
		h(w, r)
	}
}

// ConnectionInfo is a connection an identity may use, as agents see it:
// never where its upstream is.
type ConnectionInfo struct {
	Name        string `json:"name"`
	Protocol    string `json:"protocol"`
	Description string `json:"description,omitempty"`
	// Schema says whether describe_schema (GET …/schema) is offered.
	Schema bool `json:"schema"`
}

// ConnectionList is the answer of GET /v1/connections and list_connections.
type ConnectionList struct {
	Connections []ConnectionInfo `json:"connections"`
}

func (s *Server) connectionList(id protocols.Identity) ConnectionList {
	l := ConnectionList{Connections: []ConnectionInfo{}}
	for _, c := range s.usable(id) {
		l.Connections = append(l.Connections, ConnectionInfo{Name: c.Name, Protocol: string(c.Protocol), Description: c.Description, Schema: s.describes(c.Protocol)})
	}
	return l
}

func (s *Server) listConnections(w http.ResponseWriter, r *http.Request) {
	c, _ := callerFrom(r.Context())
	writeJSON(w, http.StatusOK, s.connectionList(c.id))
}

// queryRequest is the body of POST /v1/connections/{name}/query.
type queryRequest struct {
	SQL      string            `json:"sql"`
	Params   []json.RawMessage `json:"params"`
	Command  []string          `json:"command"`
	MaxRows  int               `json:"max_rows"`
	MaxBytes int               `json:"max_bytes"`
}

func (s *Server) query(w http.ResponseWriter, r *http.Request) {
	c, _ := callerFrom(r.Context())
	conn := s.connection(c.id, r.PathValue("name"))
	if conn == nil {
		notFound(w, r.PathValue("name"))
		return
	}
	var q queryRequest
	if !decodeBody(w, r, &q) {
		return
	}
	cmd, limits, msg := s.command(conn, q)
	if msg != "" {
		writeProblem(w, http.StatusBadRequest, "invalid-query", "Invalid query", msg)
		return
	}
	cmd.Kind = "api:query"
	a, err := s.runOnce(r.Context(), c, conn, cmd, limits)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	status := http.StatusOK
	switch a.Status {
	case statusRefused:
		status = http.StatusForbidden
	case statusPending:
		status = http.StatusAccepted
		w.Header().Set("Location", a.Approval.WaitURL)
	case statusFailed:
		status = http.StatusUnprocessableEntity
	}
	writeJSON(w, status, a)
}

// limits bound one answer's rows.
type limits struct{ rows, bytes int }

// maxParams is the most parameters a statement takes (PostgreSQL's and
// MySQL's limit alike).
const maxParams = 65535

// command builds the command of a query on conn, or says why it cannot.
// The statement is the command's text, classified as it would be on the
// wire; the payload records the tool and its other arguments (the
// connection, the parameters), never the statement twice nor the limits:
// an approval covers the same statement with the same parameters whatever
// the limits of its retry.
func (s *Server) command(conn *protocols.Connection, q queryRequest) (*protocols.Command, limits, string) {
	l := limits{rows: DefaultMaxRows, bytes: DefaultMaxBytes}
	switch {
	case q.MaxRows < 0 || q.MaxRows > maxRowsLimit:
		return nil, l, "max_rows must be from 1 to " + strconv.Itoa(maxRowsLimit)
	case q.MaxBytes < 0 || q.MaxBytes > maxBytesLimit:
		return nil, l, "max_bytes must be from 1 to " + strconv.Itoa(maxBytesLimit)
	}
	if q.MaxRows > 0 {
		l.rows = q.MaxRows
	}
	if q.MaxBytes > 0 {
		l.bytes = q.MaxBytes
	}
	fields := map[string]string{"connection": conn.Name}
	cmd := &protocols.Command{Protocol: conn.Protocol}
	if conn.Protocol == protocols.Redis {
		switch {
		case q.SQL != "" || len(q.Command) == 0:
			return nil, l, "connection " + conn.Name + " is Redis: send the command as an argument vector, {\"command\": [\"HGETALL\", \"user:1\"]}"
		case len(q.Params) > 0:
			return nil, l, "params apply to SQL statements; a Redis command's arguments are sent apart from each other already"
		}
		cmd.Args, cmd.Text = q.Command, strings.Join(q.Command, " ")
		cmd.Payload = &protocols.Payload{Tool: "query", Arguments: engine.Arguments(fields, nil)}
		return cmd, l, ""
	}
	if len(q.Command) > 0 || strings.TrimSpace(q.SQL) == "" {
		return nil, l, "connection " + conn.Name + " speaks SQL: send {\"sql\": \"…\"}"
	}
	if len(q.Params) > maxParams {
		return nil, l, "at most " + strconv.Itoa(maxParams) + " params"
	}
	params, err := engine.ParseParams(q.Params)
	if err != nil {
		return nil, l, err.Error()
	}
	cmd.Text = q.SQL
	cmd.Payload = &protocols.Payload{Tool: "query", Arguments: engine.Arguments(fields, params)}
	return cmd, l, ""
}

// runOnce runs cmd in a session of its own: admitted, started, closed.
func (s *Server) runOnce(ctx context.Context, c *caller, conn *protocols.Connection, cmd *protocols.Command, l limits) (*Answer, error) {
	f, err := s.open(ctx, c, conn)
	if err != nil {
		return nil, err
	}
	defer f.end("request done")
	return s.run(ctx, f, conn, cmd, l, false)
}

// run runs cmd on f and builds its answer.
func (s *Server) run(ctx context.Context, f *flow, conn *protocols.Connection, cmd *protocols.Command, l limits, tool bool) (*Answer, error) {
	col := &collector{maxRows: l.rows, maxBytes: l.bytes, redis: conn.Protocol == protocols.Redis}
	dec, err := f.execute(ctx, cmd, col, col.outcome)
	if err != nil && !isUpstream(err) {
		// The session cannot go on: its recording failed or its command
		// was cut off.
		f.end("command failed: " + err.Error())
	}
	return s.answer(conn.Name, col, dec, err, tool)
}

func isUpstream(err error) bool {
	var ue engine.UpstreamError
	return errors.As(err, &ue) || errors.Is(err, errUnreachable)
}

// fail answers an error that is not a query's outcome.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if writeLimited(w, err) {
		return
	}
	switch {
	case errors.Is(err, session.ErrNoConnection):
		notFound(w, r.PathValue("name"))
	case errors.Is(err, session.ErrAuthFailed):
		s.challenge(w, r, "invalid_token", "the token was not accepted")
	case errors.Is(err, session.ErrTLSRequired):
		writeProblem(w, http.StatusForbidden, "tls-required", "TLS required", "tokens are accepted only over TLS from another machine")
	case errors.Is(err, session.ErrRecordingUnavailable), errors.Is(err, session.ErrRecordingFailed):
		writeProblem(w, http.StatusServiceUnavailable, "recording-unavailable", "Recording unavailable",
			"the session could not be recorded, so nothing ran; try again later")
	case errors.Is(err, errUnreachable):
		if status, kind, title, detail, ok := upstreamProblem(err); ok {
			writeProblem(w, status, kind, title, detail)
			return
		}
		writeProblem(w, http.StatusBadGateway, "upstream-unreachable", "Database unreachable",
			"the connection's database could not be reached or was lost; the statement may not have run")
	case r.Context().Err() != nil:
		// The client is gone; nobody reads an answer.
	default:
		s.log.Error("agent request failed", "path", r.URL.Path, "err", err)
		writeProblem(w, http.StatusInternalServerError, "internal", "Internal error", "the request failed inside Airlock")
	}
}

// decodeBody decodes a JSON body strictly into v, or answers why not.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeProblem(w, http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type", "send the body as Content-Type: application/json")
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeProblem(w, http.StatusRequestEntityTooLarge, "body-too-large", "Body too large", "the body may hold at most "+strconv.Itoa(maxBodyBytes)+" bytes")
		} else {
			writeProblem(w, http.StatusBadRequest, "unreadable-body", "Unreadable body", "the body could not be read")
		}
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeProblem(w, http.StatusBadRequest, "malformed-json", "Malformed JSON", "the body is not the JSON object this endpoint takes: "+err.Error())
		return false
	}
	if dec.More() {
		writeProblem(w, http.StatusBadRequest, "malformed-json", "Malformed JSON", "the body has data after its JSON object")
		return false
	}
	return true
}

// ApprovalState is an approval request as its caller sees it.
type ApprovalState struct {
	ID         string    `json:"id"`
	Status     string    `json:"status" jsonschema:"pending, approved, denied, expired, cancelled or consumed"`
	Connection string    `json:"connection"`
	Command    string    `json:"command" jsonschema:"the statement as reviewers read it (secrets redacted)"`
	Risk       string    `json:"risk"`
	Rules      []string  `json:"rules"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	ValidUntil string    `json:"valid_until,omitempty" jsonschema:"until when an approval lets the identical statement run once"`
	Reviewers  []string  `json:"reviewers,omitempty" jsonschema:"who approved or denied"`
	Reason     string    `json:"reason,omitempty" jsonschema:"a denying reviewer's reason"`
	ReviewURL  string    `json:"review_url"`
	Message    string    `json:"message"`
}

func (s *Server) approvalState(r *approvals.Request) *ApprovalState {
	a := &ApprovalState{ID: r.ID, Status: string(r.Status), Connection: r.Connection, Command: r.Command, Risk: r.Risk.String(),
		Rules: r.Rules, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, ReviewURL: s.adminURL + "/approvals/" + r.ID}
	if !r.ValidUntil.IsZero() {
		a.ValidUntil = r.ValidUntil.Format(time.RFC3339)
	}
	for _, v := range r.Decisions {
		a.Reviewers = append(a.Reviewers, v.Reviewer)
	}
	if v, ok := r.Denial(); ok {
		a.Reason = v.Reason
	}
	switch r.Status {
	case approvals.StatusPending:
		a.Message = "No decision yet: keep waiting, or ask a reviewer to look at " + a.ReviewURL + "."
	case approvals.StatusApproved:
		a.Message = "Approved: send the identical statement again (same connection, same text, same params) before " + a.ValidUntil + "; it runs once."
	case approvals.StatusDenied:
		a.Message = "Denied by a reviewer"
		if a.Reason != "" {
			a.Message += ": " + a.Reason
		}
		a.Message += ". Do not send the statement again."
	case approvals.StatusConsumed:
		a.Message = "Approved, and the statement has already run once with this approval."
	default:
		a.Message = "The request is " + string(r.Status) + " and will not be approved; send the statement again to make a new request."
	}
	return a
}

// maxWait bounds one long poll.
const maxWait = 60 * time.Second

func (s *Server) approval(w http.ResponseWriter, r *http.Request) {
	c, _ := callerFrom(r.Context())
	d, err := parseWait(r.URL.Query().Get("wait"))
	if err != nil {
		writeProblem(w, http.StatusBadRequest, "invalid-wait", "Invalid wait", err.Error())
		return
	}
	if s.approvals == nil {
		writeProblem(w, http.StatusNotFound, "approval-not-found", "Approval request not found", "no approval request has this id")
		return
	}
	req, err := s.approvals.Wait(r.Context(), c.id, r.PathValue("id"), d)
	switch {
	case errors.Is(err, approvals.ErrNotFound), errors.Is(err, approvals.ErrForbidden):
		writeProblem(w, http.StatusNotFound, "approval-not-found", "Approval request not found",
			"no approval request has this id, or it is another identity's")
	case err != nil && r.Context().Err() != nil:
	case err != nil:
		s.log.Error("read approval request", "err", err)
		writeProblem(w, http.StatusInternalServerError, "internal", "Internal error", "the approval request could not be read")
	default:
		writeJSON(w, http.StatusOK, s.approvalState(req))
	}
}

// parseWait reads ?wait= as a Go duration ("30s") or whole seconds ("30").
func parseWait(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		n, nerr := strconv.Atoi(v)
		if nerr != nil {
			return 0, errors.New("wait must be a duration such as 30s, or a number of seconds")
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 || d > maxWait {
		return 0, errors.New("wait must be from 0s to " + maxWait.String())
	}
	return d, nil
}
