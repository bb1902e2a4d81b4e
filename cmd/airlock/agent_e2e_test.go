package main

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols/testenv"
)

// apiCase is one request to the query API and what must come back.
type apiCase struct {
	name   string
	call   call
	status int
	// problem is the problem type's last segment, for error answers.
	problem string
	// want are substrings of the body; never must not appear in it.
	want, never []string
}

func apiCases() []apiCase {
	big := `{"sql": "SELECT '` + strings.Repeat("x", 2<<20) + `'"}`
	q := func(body string) call {
		return call{method: "POST", path: "/v1/connections/main/query", token: agentToken, contentType: "application/json", body: body}
	}
	return []apiCase{
		{name: "connections", call: call{method: "GET", path: "/v1/connections", token: agentToken}, status: 200,
			want:  []string{`"name":"main"`, `"protocol":"postgres"`, `"description":"The shop's orders and customers."`, `"schema":true`},
			never: []string{`"ops"`, "127.0.0.1", "postgres://", upstreamSecret}},
		{name: "schema", call: call{method: "GET", path: "/v1/connections/main/schema", token: agentToken}, status: 200,
			want: []string{`"name":"customers"`, `"comment":"people who bought something"`, `"name":"email","type":"text","nullable":true,"comment":"contact address"`}},
		{name: "completed, masked", call: queryCall("main", "SELECT * FROM customers ORDER BY id"), status: 200,
			want:  []string{`"status":"completed"`, `"a***@example.com"`, `"row_count":3`, `["3","Linus",null]`, `"command_tag":"SELECT 3"`},
			never: []string{"ada@example.com"}},
		{name: "completed, truncated", call: q(`{"sql": "SELECT g FROM generate_series(1, 50) g", "max_rows": 5}`), status: 200,
			want: []string{`"truncated":true`, `"returned_rows":5`, `"row_count":50`}},
		{name: "completed, a write", call: queryCall("main", "UPDATE customers SET name = name WHERE id < 3"), status: 200,
			want: []string{`"command_tag":"UPDATE 2"`, `"row_count":2`}},
		{name: "refused", call: queryCall("main", "COPY customers TO PROGRAM 'cat > /tmp/x'"), status: 403,
			want: []string{`"status":"refused"`, `"rules":["reach.program"]`, "did not run"}},
		{name: "pending", call: queryCall("main", "DROP TABLE scratch"), status: 202,
			want: []string{`"status":"pending_approval"`, `"rules":["schema.drop"]`, "/approvals/", `"wait_url":"/v1/approvals/`}},
		{name: "failed upstream", call: queryCall("main", "SELECT * FROM no_such_table"), status: 422,
			want: []string{`"status":"failed"`, `"code":"42P01"`, `relation \"no_such_table\" does not exist`}},
		{name: "malformed JSON", call: q(`{"sql": `), status: 400, problem: "malformed-json"},
		{name: "unknown field", call: q(`{"sql": "SELECT 1", "rows": 3}`), status: 400, problem: "malformed-json"},
		{name: "trailing data", call: q(`{"sql": "SELECT 1"} {}`), status: 400, problem: "malformed-json"},
		{name: "params", call: q(`{"sql": "SELECT $1::int + 1", "params": [1]}`), status: 200, want: []string{`"rows":[["2"]]`}},
		{name: "params not scalars", call: q(`{"sql": "SELECT $1", "params": [{"a": 1}]}`), status: 400, problem: "invalid-query",
			want: []string{"params[0]: a parameter must be a string, a number, a boolean or null"}},
		{name: "no statement", call: q(`{}`), status: 400, problem: "invalid-query"},
		{name: "max_rows out of range", call: q(`{"sql": "SELECT 1", "max_rows": 100000}`), status: 400, problem: "invalid-query"},
		{name: "wrong content type", call: call{method: "POST", path: "/v1/connections/main/query", token: agentToken, contentType: "text/plain", body: `{"sql": "SELECT 1"}`},
			status: 415, problem: "unsupported-media-type"},
		{name: "oversized body", call: q(big), status: 413, problem: "body-too-large"},
		{name: "unknown connection", call: queryCall("nosuch", "SELECT 1"), status: 404, problem: "connection-not-found"},
		{name: "forbidden connection", call: queryCall("ops", "SELECT 1"), status: 404, problem: "connection-not-found"},
		{name: "forbidden schema", call: call{method: "GET", path: "/v1/connections/ops/schema", token: agentToken}, status: 404, problem: "connection-not-found"},
		{name: "missing token", call: call{method: "GET", path: "/v1/connections"}, status: 401, problem: "unauthorized"},
		{name: "wrong token", call: call{method: "GET", path: "/v1/connections", token: "not-a-token"}, status: 401, problem: "unauthorized"},
		{name: "wrong method", call: call{method: "GET", path: "/v1/connections/main/query", token: agentToken}, status: 405, problem: "method-not-allowed"},
		{name: "unknown endpoint", call: call{method: "GET", path: "/v2/anything", token: agentToken}, status: 404, problem: "not-found"},
		{name: "bad wait", call: call{method: "GET", path: "/v1/approvals/abc?wait=forever", token: agentToken}, status: 400, problem: "invalid-wait"},
		{name: "unknown approval", call: call{method: "GET", path: "/v1/approvals/aaaaaaaaaaaaaaaaaaaaaaaa", token: agentToken}, status: 404, problem: "approval-not-found"},
		{name: "openapi", call: call{method: "GET", path: "/v1/openapi.json"}, status: 200, want: []string{`"openapi": "3.1.0"`, `"/v1/connections/{name}/query"`}},
		{name: "resource metadata", call: call{method: "GET", path: "/.well-known/oauth-protected-resource/mcp"}, status: 200,
			want: []string{`/mcp"`, `"bearer_methods_supported":["header"]`}},
	}
}

// check asserts a reply against the case.
func (c apiCase) check(t *testing.T, r reply) {
	t.Helper()
	if r.status != c.status {
		t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
	}
	ct := r.header.Get("Content-Type")
	if c.problem != "" {
		var p struct {
			Type   string `json:"type"`
			Title  string `json:"title"`
			Status int    `json:"status"`
			Detail string `json:"detail"`
		}
		r.json(t, &p)
		if ct != "application/problem+json" || !strings.HasSuffix(p.Type, "/"+c.problem) || p.Status != c.status || p.Title == "" || p.Detail == "" {
			t.Fatalf("want an RFC 9457 problem %q, got %s %s", c.problem, ct, r.body)
		}
	} else if !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("content type %q", ct)
	}
	for _, w := range c.want {
		if !strings.Contains(r.body, w) {
			t.Errorf("the answer lacks %s:\n%s", w, r.body)
		}
	}
	for _, n := range c.never {
		if strings.Contains(r.body, n) {
			t.Errorf("the answer holds %s:\n%s", n, r.body)
		}
	}
	if c.status == 401 {
		if h := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(h, `Bearer realm="airlock"`) || !strings.Contains(h, `resource_metadata="http://`) {
			t.Errorf("WWW-Authenticate %q", h)
		}
	}
}

// curl sends c with the curl binary and returns its answer.
func (a *agentInstance) curl(t *testing.T, c call) reply {
	t.Helper()
	dir := t.TempDir()
	body, headers := filepath.Join(dir, "body"), filepath.Join(dir, "headers")
	args := []string{"-sS", "-X", c.method, "-o", body, "-D", headers, "-w", "%{http_code}"}
	if c.token != "" {
		args = append(args, "-H", "Authorization: Bearer "+c.token)
	}
	if c.contentType != "" {
		args = append(args, "-H", "Content-Type: "+c.contentType)
	}
	if c.body != "" {
		in := filepath.Join(dir, "in")
		if err := os.WriteFile(in, []byte(c.body), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--data-binary", "@"+in)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "curl", append(args, a.base+c.path)...).Output()
	if err != nil {
		t.Fatalf("curl: %v %s", err, out)
	}
	status, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	b, _ := os.ReadFile(body)
	h, _ := os.ReadFile(headers)
	r := reply{status: status, body: string(b), header: map[string][]string{}}
	for _, line := range strings.Split(string(h), "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			r.header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	return r
}

// TestAgentQueryAPI drives every answer shape and every bad input of the
// query API through a running Airlock, with net/http and with curl.
func TestAgentQueryAPI(t *testing.T) {
	db := testenv.PostgresDB(t)
	seedShop(t, db)
	a := startAgents(t, db, "")
	clients := map[string]func(*testing.T, call) reply{"net/http": a.do}
	if _, err := exec.LookPath("curl"); err == nil {
		clients["curl"] = a.curl
	} else if testenv.InCI() {
		t.Fatal("curl is not installed under CI=true")
	}
	for name, send := range clients {
		t.Run(name, func(t *testing.T) {
			for _, c := range apiCases() {
				t.Run(c.name, func(t *testing.T) { c.check(t, send(t, c.call)) })
			}
		})
	}

	t.Run("TLS on the same port", func(t *testing.T) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		req, _ := http.NewRequest("GET", strings.Replace(a.base, "http://", "https://", 1)+"/v1/connections", nil)
		req.Header.Set("Authorization", "Bearer "+agentToken)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.TLS == nil || !strings.Contains(string(b), `"main"`) {
			t.Fatalf("over TLS: %d %s", resp.StatusCode, b)
		}
	})

	t.Run("unknown and forbidden connections answer alike", func(t *testing.T) {
		unknown, forbidden := a.do(t, queryCall("nosuch", "SELECT 1")), a.do(t, queryCall("ops", "SELECT 1"))
		if strings.ReplaceAll(unknown.body, "nosuch", "X") != strings.ReplaceAll(forbidden.body, "ops", "X") {
			t.Fatalf("a caller can tell them apart:\n%s\n%s", unknown.body, forbidden.body)
		}
		if r := a.do(t, call{method: "GET", path: "/v1/connections", token: devToken}); !strings.Contains(r.body, `"ops"`) {
			t.Fatalf("dev may use ops: %s", r.body)
		}
		if r := a.do(t, call{method: "GET", path: "/v1/connections", token: guestToken}); r.body != "{\"connections\":[]}\n" {
			t.Fatalf("guest may use nothing: %s", r.body)
		}
	})

	t.Run("approval by the CLI while a long poll waits", func(t *testing.T) {
		r := a.do(t, queryCall("main", "DROP TABLE scratch"))
		var pending Answer
		r.json(t, &pending)
		if r.status != 202 || pending.Approval == nil {
			t.Fatalf("pending: %d %s", r.status, r.body)
		}
		id := pending.Approval.ID
		if r.header.Get("Location") != "/v1/approvals/"+id+"?wait=30s" {
			t.Errorf("Location %q", r.header.Get("Location"))
		}
		if r := a.do(t, call{method: "GET", path: "/v1/approvals/" + id, token: guestToken}); r.status != 404 || !strings.Contains(r.body, "approval-not-found") {
			t.Errorf("another identity's request (neither its caller nor a reviewer): %d %s", r.status, r.body)
		}
		polled := make(chan reply, 1)
		go func() {
			polled <- a.do(t, call{method: "GET", path: "/v1/approvals/" + id + "?wait=30s", token: agentToken})
		}()
		time.Sleep(300 * time.Millisecond)
		select {
		case r := <-polled:
			t.Fatalf("the long poll returned before a decision: %s", r.body)
		default:
		}
		approvalsCLI(t, a.instance, "approve", id)
		start := time.Now()
		var st struct{ Status, Message string }
		select {
		case r := <-polled:
			r.json(t, &st)
		case <-time.After(40 * time.Second):
			t.Fatal("the long poll did not see the approval")
		}
		if st.Status != "approved" || !strings.Contains(st.Message, "identical statement") {
			t.Fatalf("after approval: %+v", st)
		}
		t.Logf("decision seen %v after the CLI returned", time.Since(start).Round(time.Millisecond))
		if tableExists(t, db, "scratch") != true {
			t.Fatal("an approval alone ran the statement")
		}
		if r := a.do(t, queryCall("main", "DROP TABLE scratch")); r.status != 200 || !strings.Contains(r.body, `"command_tag":"DROP TABLE"`) {
			t.Fatalf("the approved retry: %d %s", r.status, r.body)
		}
		if tableExists(t, db, "scratch") {
			t.Fatal("the approved DROP did not run")
		}
		if r := a.do(t, queryCall("main", "DROP TABLE IF EXISTS scratch")); r.status != 202 || strings.Contains(r.body, id) {
			t.Fatalf("an approval covers one run: %d %s", r.status, r.body)
		}
	})
}

// Answer mirrors the query API's answer for the tests.
type Answer struct {
	Status   string `json:"status"`
	Approval *struct {
		ID string `json:"id"`
	} `json:"approval"`
}
