package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/airlock-gw/airlock/protocols/testenv"
)

// TestHTTPConnections runs real upstreams (an API, an LLM provider
// stand-in, a gRPC server) behind one Airlock and drives them with
// net/http, coder/websocket and grpc-go clients: credentials injected and
// never leaked, masking, approvals, GraphQL, LLM presets, gRPC, streaming
// and WebSocket pass-through, and bad input.
func TestHTTPConnections(t *testing.T) {
	t.Parallel()
	testenv.Need(t, "PostgreSQL", testenv.PostgresAddr)
	api, llm := apiStandIn(t), llmStandIn(t)
	grpcAddr, descriptors, hs := grpcStandIn(t)
	a := startHTTP(t, httpConfig(api.addr, llm.addr, grpcAddr, descriptors))
	seen := &answers{}
	do := func(t *testing.T, method, path, token, body string, hdr map[string]string) (int, http.Header, string) {
		t.Helper()
		req, err := http.NewRequest(method, a.base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		seen.add(resp.Header, string(b))
		return resp.StatusCode, resp.Header, string(b)
	}

	t.Run("credentials injected", func(t *testing.T) {
		for _, tc := range []struct{ conn, check string }{
			{"api", "Authorization=Bearer " + upstreamCredentials["HTTP_BEARER"]},
			{"api-header", "X-Api-Key=" + upstreamCredentials["HTTP_APIKEY"]},
			{"api-basic", "Authorization=Basic "},
			{"api-query", "query=api_key=" + upstreamCredentials["HTTP_QUERY"]},
			{"api-oauth", "Authorization=Bearer " + oauthToken},
		} {
			st, _, body := do(t, "GET", "/proxy/"+tc.conn+"/echo?x=1", agentToken, "", nil)
			if st != http.StatusOK {
				t.Fatalf("%s: %d %s", tc.conn, st, body)
			}
			got := api.last(t, "/echo")
			name, want, _ := strings.Cut(tc.check, "=")
			value := got.Header.Get(name)
			if name == "query" {
				value = got.RawQuery
			}
			if !strings.Contains(value, want) {
				t.Errorf("%s: the upstream got %s %q, want %q", tc.conn, name, value, want)
			}
			if strings.Contains(strings.Join(got.Header.Values("Authorization"), " "), agentToken) {
				t.Errorf("%s: the caller's Airlock token reached the upstream", tc.conn)
			}
			// The upstream echoed the credential: it must arrive removed
			// (scrubbed, or masked by the secrets detectors first).
			if !strings.Contains(body, "[removed]") && !strings.Contains(body, "[redacted:") {
				t.Errorf("%s: the echoed credential was not scrubbed: %s", tc.conn, body)
			}
		}
		if _, user, _ := strings.Cut(api.last(t, "/echo").Header.Get("Authorization"), " "); user == "" {
			t.Error("no authorization")
		}
	})

	t.Run("http2 over tls", func(t *testing.T) {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
		req, _ := http.NewRequest("GET", "https://"+strings.TrimPrefix(a.base, "http://")+"/proxy/api/users", nil)
		req.Header.Set("Authorization", "Bearer "+agentToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		seen.add(resp.Header, string(b))
		if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK || strings.Contains(string(b), "jane.doe@") {
			t.Errorf("%s %d %s", resp.Proto, resp.StatusCode, b)
		}
	})

	t.Run("caller refused", func(t *testing.T) {
		if st, h, _ := do(t, "GET", "/proxy/api/users", "", "", nil); st != http.StatusUnauthorized || h.Get("WWW-Authenticate") == "" {
			t.Errorf("no token: %d", st)
		}
		if st, _, _ := do(t, "GET", "/proxy/api/users", "wrong-token", "", nil); st != http.StatusUnauthorized {
			t.Errorf("bad token: %d", st)
		}
		if st, _, _ := do(t, "GET", "/proxy/nope/users", agentToken, "", nil); st != http.StatusNotFound {
			t.Errorf("unknown connection: %d", st)
		}
	})

	t.Run("json masked by detectors and paths", func(t *testing.T) {
		st, _, body := do(t, "GET", "/proxy/api/users", agentToken, "", nil)
		if st != http.StatusOK {
			t.Fatalf("%d %s", st, body)
		}
		for _, gone := range []string{"jane.doe@example.com", "bob@example.org", "123-45-6789"} {
			if strings.Contains(body, gone) {
				t.Errorf("%s passed unmasked: %s", gone, body)
			}
		}
		if !strings.Contains(body, "@example.com") || !strings.Contains(body, `"ssn":"[redacted]"`) {
			t.Errorf("masked body: %s", body)
		}
	})

	t.Run("gzip json masked", func(t *testing.T) {
		st, h, body := do(t, "GET", "/proxy/api/users.gz", agentToken, "", map[string]string{"Accept-Encoding": "gzip"})
		if st != http.StatusOK || h.Get("Content-Encoding") != "" {
			t.Fatalf("%d %v %q", st, h, body)
		}
		if strings.Contains(body, "gzip.person@example.com") || strings.Contains(body, "4111 1111 1111 1111") || !strings.Contains(body, "[redacted:payment_card]") {
			t.Errorf("gzip body not masked: %s", body)
		}
	})

	t.Run("delete refused then run once after approval", func(t *testing.T) {
		st, h, body := do(t, "DELETE", "/proxy/api/v1/users/7", agentToken, "", nil)
		if st != http.StatusConflict || h.Get("Retry-After") == "" {
			t.Fatalf("DELETE: %d %s", st, body)
		}
		var pr struct {
			ApprovalID string   `json:"approval_id"`
			ReviewURL  string   `json:"review_url"`
			Rules      []string `json:"rules"`
		}
		if err := json.Unmarshal([]byte(body), &pr); err != nil || pr.ApprovalID == "" || pr.ReviewURL == "" || fmt.Sprint(pr.Rules) != "[http.delete]" {
			t.Fatalf("problem: %v %s", err, body)
		}
		approvalsCLI(t, a.instance, "approve", pr.ApprovalID)
		if st, _, body := do(t, "DELETE", "/proxy/api/v1/users/7?force=1", agentToken, "", nil); st != http.StatusConflict {
			t.Fatalf("a different request ran on the approval: %d %s", st, body)
		}
		if st, _, body := do(t, "DELETE", "/proxy/api/v1/users/7", agentToken, "", nil); st != http.StatusOK {
			t.Fatalf("the approved retry: %d %s", st, body)
		}
		if st, _, _ := do(t, "DELETE", "/proxy/api/v1/users/7", agentToken, "", nil); st != http.StatusConflict {
			t.Fatalf("the approval ran twice: %d", st)
		}
		api.mu.Lock()
		n := api.deletes
		api.mu.Unlock()
		if n != 1 {
			t.Errorf("the upstream ran %d deletes, want 1", n)
		}
	})

	t.Run("admin route denied", func(t *testing.T) {
		st, _, body := do(t, "POST", "/proxy/api/admin/users", agentToken, `{}`, map[string]string{"Content-Type": "application/json"})
		if st != http.StatusForbidden || !strings.Contains(body, "http.admin") {
			t.Errorf("%d %s", st, body)
		}
	})

	t.Run("graphql query allowed, mutation held", func(t *testing.T) {
		st, _, body := do(t, "POST", "/proxy/gql/", agentToken, `{"query":"{ user(id: 1) { email } }"}`, map[string]string{"Content-Type": "application/json"})
		if st != http.StatusOK || strings.Contains(body, "graph.user@example.com") {
			t.Fatalf("query: %d %s", st, body)
		}
		mutation := `{"query":"mutation { deleteUser(id: 1) { id } }"}`
		st, _, body = do(t, "POST", "/proxy/gql/", agentToken, mutation, map[string]string{"Content-Type": "application/json"})
		if st != http.StatusConflict || !strings.Contains(body, "graphql.mutation") {
			t.Fatalf("mutation in retry mode: %d %s", st, body)
		}
		// A caller that can wait is held until a reviewer decides.
		done := make(chan int, 1)
		go func() {
			st, _, _ := do(t, "POST", "/proxy/gql/", agentToken, mutation, map[string]string{"Content-Type": "application/json", "Prefer": "wait=60"})
			done <- st
		}()
		id := waitPending(t, a.instance, "mutation")
		select {
		case st := <-done:
			t.Fatalf("the held mutation answered %d before a decision", st)
		default:
		}
		approvalsCLI(t, a.instance, "approve", id)
		select {
		case st := <-done:
			if st != http.StatusOK {
				t.Fatalf("held mutation: %d", st)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the held mutation did not run after approval")
		}
	})

	t.Run("sse events arrive one by one", func(t *testing.T) {
		req, _ := http.NewRequest("GET", a.base+"/proxy/api/events", nil)
		req.Header.Set("Authorization", "Bearer "+agentToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		first := readEvent(t, br)
		if !strings.Contains(first, "f***@example.com") || strings.Contains(first, "first.event@") {
			t.Fatalf("first event: %q", first)
		}
		// The upstream sends the second event only now: the first came
		// before the stream ended.
		api.sseGo <- struct{}{}
		second := readEvent(t, br)
		if !strings.Contains(second, "second event") || strings.Contains(second, "second.event@") {
			t.Fatalf("second event: %q", second)
		}
		seen.add(resp.Header, first+second)
	})

	t.Run("redirects", func(t *testing.T) {
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		for path, want := range map[string]string{
			"/proxy/api/redirect-same":       "/proxy/api/users?page=2",
			"/proxy/api-query/redirect-away": "https://elsewhere.example/path?x=1",
		} {
			req, _ := http.NewRequest("GET", a.base+path, nil)
			req.Header.Set("Authorization", "Bearer "+agentToken)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			seen.add(resp.Header, "")
			if loc := resp.Header.Get("Location"); loc != want {
				t.Errorf("%s: Location %q, want %q", path, loc, want)
			}
		}
	})

	t.Run("websocket echo", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(a.base, "http")+"/proxy/api/ws",
			&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + agentToken}}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		if err := c.Write(ctx, websocket.MessageText, []byte("hello from ws.user@example.com")); err != nil {
			t.Fatal(err)
		}
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(data), "echo: hello from w***@example.com") {
			t.Errorf("echo %q", data)
		}
		if got := api.last(t, "/ws/message").Body; strings.Contains(got, "ws.user@") {
			t.Errorf("the upstream got the unmasked message %q", got)
		}
		_ = c.Close(websocket.StatusNormalClosure, "")
	})

	t.Run("openai prompt masked before it leaves", func(t *testing.T) {
		prompt := `{"model":"gpt-test","messages":[{"role":"system","content":"You help."},` +
			`{"role":"user","content":"my key is AKIAIOSFODNN7EXAMPLE and my mail is prompt.person@example.com"}]}`
		st, _, body := do(t, "POST", "/proxy/openai/v1/chat/completions", agentToken, prompt, map[string]string{"Content-Type": "application/json"})
		if st != http.StatusOK || !strings.Contains(body, "run_sql") {
			t.Fatalf("%d %s", st, body)
		}
		got := llm.last(t, "/v1/chat/completions")
		if strings.Contains(got.Body, "AKIAIOSFODNN7EXAMPLE") || strings.Contains(got.Body, "prompt.person@example.com") {
			t.Fatalf("a secret reached the provider: %s", got.Body)
		}
		if got.Header.Get("Authorization") != "Bearer "+upstreamCredentials["HTTP_OPENAI"] {
			t.Errorf("provider key not injected: %q", got.Header.Get("Authorization"))
		}
	})

	t.Run("openai stream masked event by event", func(t *testing.T) {
		req, _ := http.NewRequest("POST", a.base+"/proxy/openai/v1/chat/completions",
			strings.NewReader(`{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"repeat my card"}]}`))
		req.Header.Set("Authorization", "Bearer "+agentToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		var events []string
		for {
			ev := readEvent(t, br)
			events = append(events, ev)
			if strings.Contains(ev, "[DONE]") {
				break
			}
		}
		all := strings.Join(events, "")
		seen.add(resp.Header, all)
		if len(events) < 4 || strings.Contains(all, "4111 1111 1111 1111") || !strings.Contains(all, "[redacted:payment_card]") {
			t.Fatalf("stream: %q", events)
		}
	})

	t.Run("anthropic", func(t *testing.T) {
		body := `{"model":"claude-test","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"token ghp_abcdefghijklmnopqrstuvwxyz0123456789 leaks"}]}`
		st, _, out := do(t, "POST", "/proxy/anthropic/v1/messages", "", body, map[string]string{"X-Api-Key": agentToken, "Content-Type": "application/json"})
		if st != http.StatusOK || !strings.Contains(out, "query_db") {
			t.Fatalf("%d %s", st, out)
		}
		got := llm.last(t, "/v1/messages")
		if strings.Contains(got.Body, "ghp_abcdefghijklmnopqrstuvwxyz0123456789") {
			t.Errorf("a token reached the provider: %s", got.Body)
		}
	})

	t.Run("grpc denied and streamed", func(t *testing.T) {
		conn, err := grpc.NewClient("passthrough:///"+strings.TrimPrefix(a.base, "http://"),
			grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithUnaryInterceptor(prefixUnary), grpc.WithStreamInterceptor(prefixStream))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		client := healthpb.NewHealthClient(conn)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+agentToken)
		_, err = client.Check(ctx, &healthpb.HealthCheckRequest{Service: "shop"})
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("Check: %v, want PERMISSION_DENIED", err)
		}
		w, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: "shop"})
		if err != nil {
			t.Fatal(err)
		}
		first, err := w.Recv()
		if err != nil || first.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("first message: %v %v", first, err)
		}
		hs.SetServingStatus("shop", healthpb.HealthCheckResponse_NOT_SERVING)
		second, err := w.Recv()
		if err != nil || second.Status != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Fatalf("second message: %v %v", second, err)
		}
	})

	t.Run("grpc messages read by reflection", func(t *testing.T) {
		conn, err := grpc.NewClient("passthrough:///"+strings.TrimPrefix(a.base, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				return invoker(ctx, "/proxy/grpc-reflect"+method, req, reply, cc, opts...)
			}))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+agentToken)
		res, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "reflected.user@example.com"})
		if status.Code(err) != codes.NotFound {
			t.Fatalf("Check: %v %v, want NOT_FOUND from the server", res, err)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		addr := strings.TrimPrefix(a.base, "http://")
		raw := func(req string) string {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c, req); err != nil {
				return err.Error()
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			return line
		}
		if got := raw("GARBAGE\r\n\r\n"); !strings.Contains(got, " 400 ") {
			t.Errorf("malformed request line: %q", got)
		}
		flood := "GET /proxy/api/users HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-Flood: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 2000) + "\r\n"
		if got := raw(flood); !strings.Contains(got, " 431 ") {
			t.Errorf("header flood: %q", got)
		}
		big := "GET /proxy/api/users HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 200<<10) + "\r\n\r\n"
		if got := raw(big); !strings.Contains(got, " 431 ") {
			t.Errorf("oversized header: %q", got)
		}
		// Past body.inspect a body streams through uninspected; past
		// body.max it is refused.
		st, _, body := do(t, "POST", "/proxy/api/upload", agentToken, strings.Repeat("u", 40<<10), map[string]string{"Content-Type": "application/octet-stream"})
		if st != http.StatusOK || !strings.Contains(body, `"bytes":40960`) {
			t.Errorf("streamed upload: %d %s", st, body)
		}
		st, _, body = do(t, "POST", "/proxy/api/upload", agentToken, strings.Repeat("x", 100<<10), map[string]string{"Content-Type": "application/octet-stream"})
		if st != http.StatusRequestEntityTooLarge {
			t.Errorf("body over the limit: %d %s", st, body)
		}
		// A slow-loris client that never finishes its headers is cut
		// after the handshake timeout.
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		_, _ = io.WriteString(c, "GET /proxy/api/users HTTP/1.1\r\nHost: x\r\n")
		cut := make(chan struct{})
		go func() {
			defer close(cut)
			buf := make([]byte, 1)
			for {
				if _, err := io.WriteString(c, "X-Slow: 1\r\n"); err != nil {
					return
				}
				_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				if _, err := c.Read(buf); err != nil && !isTimeout(err) {
					return
				}
				if time.Since(start) > 20*time.Second {
					return
				}
			}
		}()
		<-cut
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("the slow client was not cut (%v)", d)
		}
		if st, _, _ := do(t, "GET", "/proxy/api/users", agentToken, "", nil); st != http.StatusOK {
			t.Errorf("Airlock stopped serving: %d", st)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		m := a.metrics(t)
		for _, want := range []string{
			`airlock_commands_total{action="allow",connection="api",enforced="true",protocol="http",risk="none"}`,
			`airlock_llm_tokens_total{connection="openai",identity="agent",kind="input",model="gpt-test",protocol="http"} 52`,
			`airlock_llm_tool_calls_total{connection="openai",protocol="http",risk="high"}`,
			`airlock_http_responses_total{code="2xx",connection="api",protocol="http"}`,
		} {
			if !strings.Contains(m, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})

	// Every credential Airlock holds stays out of every answer, log line
	// and recording.
	a.stop()
	var replays strings.Builder
	for _, f := range recordings(t, a.instance) {
		out, code := replayWithCredentials(t, a.instance, f)
		if code != 0 {
			t.Errorf("replay %s: %d %s", f, code, out)
		}
		replays.WriteString(out)
	}
	rec := replays.String()
	for _, want := range []string{"DELETE /v1/users/7", "tool call run_sql", "DROP TABLE customers", "SQL, not run here; as a statement: review",
		"tool call query_db", "websocket client text", "/grpc.health.v1.Health/Watch", `{"service":"r***@example.com"}`} {
		if !strings.Contains(rec, want) {
			t.Errorf("the recordings lack %q", want)
		}
	}
	secrets := []string{oauthToken, agentToken}
	for _, v := range upstreamCredentials {
		secrets = append(secrets, v)
	}
	for _, s := range secrets {
		for where, text := range map[string]string{"an answer": seen.String(), "the log": a.Logs(), "a recording": rec} {
			if strings.Contains(text, s) {
				t.Errorf("%s holds %q", where, s)
			}
		}
	}
	for _, s := range []string{"AKIAIOSFODNN7EXAMPLE", "prompt.person@example.com", "jane.doe@example.com", "4111 1111 1111 1111"} {
		if strings.Contains(rec, s) {
			t.Errorf("a recording holds %q", s)
		}
	}
	if os.Getenv("HTTP_E2E_DUMP") != "" {
		t.Log(rec)
	}
}

// readEvent reads one server-sent event.
func readEvent(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	var ev strings.Builder
	for {
		line, err := br.ReadString('\n')
		ev.WriteString(line)
		if err != nil {
			t.Fatalf("event cut: %v %q", err, ev.String())
		}
		if strings.TrimRight(line, "\r\n") == "" && ev.Len() > len(line) {
			return ev.String()
		}
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// waitPending returns the id of the pending hold-mode approval request
// whose command contains text.
func waitPending(t *testing.T, in *instance, text string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		out := approvalsCLI(t, in, "list", "--json")
		var list struct {
			Approvals []struct {
				ID      string `json:"id"`
				Command string `json:"command"`
				Status  string `json:"status"`
				Mode    string `json:"mode"`
			} `json:"approvals"`
		}
		if json.Unmarshal([]byte(out), &list) == nil {
			for _, r := range list.Approvals {
				if r.Status == "pending" && r.Mode == "hold" && strings.Contains(r.Command, text) {
					return r.ID
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no pending request for %q", text)
	return ""
}

// prefixUnary and prefixStream send gRPC calls under the connection's
// path, /proxy/grpc/pkg.Service/Method.
func prefixUnary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return invoker(ctx, "/proxy/grpc"+method, req, reply, cc, opts...)
}

func prefixStream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return streamer(ctx, desc, cc, "/proxy/grpc"+method, opts...)
}

// replayWithCredentials replays a recording with the environment the
// configuration expands.
func replayWithCredentials(t *testing.T, in *instance, file string) (string, int) {
	t.Helper()
	cmd := exec.Command(airlockBin(t), "replay", file)
	cmd.Dir = in.dir
	cmd.Env = append(os.Environ(), "TEST_UPSTREAM_PASSWORD="+upstreamSecret)
	for k, v := range upstreamCredentials {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}
