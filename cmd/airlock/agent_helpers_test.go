package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/session/identity"
)

const (
	agentToken = "agent-token"
	guestToken = "guest-token" // an identity no connection allows
)

// agentConfig fronts database db with two connections: main, which dev
// and agent may use (e-mail addresses masked), and ops, which only dev
// may use. Approvals are configured to hold, which the agent frontend
// turns into retry; reach beyond the database is denied.
func agentConfig(db, extra string) string {
	return fmt.Sprintf(`
listen:
  postgres: 127.0.0.1:0
  admin: 127.0.0.1:0
  http: 127.0.0.1:0
log:
  level: debug
identities:
  - name: dev
    groups: [developers]
    token_sha256: %[1]s
  - name: agent
    groups: [agents]
    token_sha256: %[2]s
  - name: guest
    token_sha256: %[6]s
policy:
  rules:
    reach.*: deny
approvals:
  mode: hold
  timeout: 2m
  reviewers: [dev]
masking:
  detect:
    - {entity: email, strategy: partial}
connections:
  - name: main
    protocol: postgres
    description: The shop's orders and customers.
    upstream: &up
      address: %[3]s
      database: %[4]s
      user: postgres
      password: ${TEST_UPSTREAM_PASSWORD}
      tls: {mode: disable}
    allow: [dev, agent]
  - name: ops
    protocol: postgres
    description: Operations only.
    upstream: *up
    allow: [dev]
%[5]s
`, devTokenHash, identity.HashToken(agentToken), testenv.PostgresAddr, db, extra, identity.HashToken(guestToken))
}

var httpListeningRE = regexp.MustCompile(`msg=listening listener=http addr=([0-9.:]+)`)

// agentInstance is a running Airlock with its HTTP listener.
type agentInstance struct {
	*instance
	base string // http://host:port
}

// startAgents runs Airlock on agentConfig and waits for its HTTP listener.
func startAgents(t *testing.T, db, extra string) *agentInstance {
	t.Helper()
	testenv.Need(t, "PostgreSQL", testenv.PostgresAddr)
	in := startAirlock(t, agentConfig(db, extra))
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := httpListeningRE.FindStringSubmatch(in.Logs()); m != nil {
			return &agentInstance{instance: in, base: "http://" + m[1]}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no http listener\n%s", in.Logs())
	return nil
}

// call is one HTTP request to the agent API.
type call struct {
	method, path, token, contentType string
	body                             string
	header                           map[string]string
}

// reply is an HTTP answer.
type reply struct {
	status int
	header http.Header
	body   string
}

func (r reply) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("answer %d is not JSON: %v\n%s", r.status, err, r.body)
	}
}

// do sends c with net/http.
func (a *agentInstance) do(t *testing.T, c call) reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, c.method, a.base+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.contentType != "" {
		req.Header.Set("Content-Type", c.contentType)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// queryCall is a POST of sql to connection conn as agent.
func queryCall(conn, sql string) call {
	b, _ := json.Marshal(map[string]string{"sql": sql})
	return call{method: "POST", path: "/v1/connections/" + conn + "/query", token: agentToken, contentType: "application/json", body: string(b)}
}

// bearerTransport adds a token to every request, as an MCP client
// configured with a bearer token does.
type bearerTransport struct {
	token string
	base  http.RoundTripper
}

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// mcpConnect connects the SDK's client to the instance's /mcp with token,
// asking for protocol version (empty: the SDK's latest).
func (a *agentInstance) mcpConnect(t *testing.T, token, version string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "airlock-e2e", Version: "1"}, opts)
	tr := &mcp.StreamableClientTransport{Endpoint: a.base + "/mcp",
		HTTPClient: &http.Client{Transport: bearerTransport{token: token, base: http.DefaultTransport}}, DisableStandaloneSSE: true}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, tr, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("connect (%s): %v", version, err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// callTool calls a tool and returns its result and structured content.
func callTool(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) (*mcp.CallToolResult, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var out map[string]any
	if res.StructuredContent != nil {
		b, _ := json.Marshal(res.StructuredContent)
		_ = json.Unmarshal(b, &out)
	}
	return res, out
}

// resultText joins a tool result's text content.
func resultText(res *mcp.CallToolResult) string {
	var b bytes.Buffer
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// seedShop creates the tables the agent tests read.
func seedShop(t *testing.T, db string) {
	t.Helper()
	c := pgxConnect(t, testenv.PostgresURL(t, db))
	for _, s := range []string{
		"CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text)",
		"COMMENT ON TABLE customers IS 'people who bought something'",
		"COMMENT ON COLUMN customers.email IS 'contact address'",
		"INSERT INTO customers VALUES (1, 'Ada', 'ada@example.com'), (2, 'Grace', 'grace@example.org'), (3, 'Linus', NULL)",
		"CREATE TABLE scratch (id int)",
	} {
		if _, err := c.Exec(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}
