package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/session/identity"
)

// The credentials Airlock holds for the stand-in upstreams: none of them
// may ever reach a caller, a log line or a recording.
var upstreamCredentials = map[string]string{
	"HTTP_BEARER":        "up-bearer-Secret-1a2b3c",
	"HTTP_APIKEY":        "up-apikey-Secret-4d5e6f",
	"HTTP_BASIC":         "up-basic-Secret-7g8h9i",
	"HTTP_QUERY":         "up-query-Secret-0j1k2l",
	"HTTP_CLIENT_SECRET": "up-client-Secret-3m4n5o",
	"HTTP_OPENAI":        "sk-up-openai-Secret-9s0t1u",
	"HTTP_ANTHROPIC":     "up-anthropic-Secret-2v3w4x",
}

// oauthToken is the access token the stand-in token endpoint issues.
const oauthToken = "up-oauth-Token-6p7q8r"

// received is what a stand-in upstream saw of one request.
type received struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   string
}

// standIn is a local upstream that records what it receives.
type standIn struct {
	srv  *http.Server
	addr string

	mu       sync.Mutex
	requests []received
	deletes  int
	// sseGo lets the event stream send its second event.
	sseGo chan struct{}
}

func (u *standIn) record(r *http.Request) received {
	body, _ := io.ReadAll(r.Body)
	rec := received{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: string(body)}
	u.mu.Lock()
	u.requests = append(u.requests, rec)
	u.mu.Unlock()
	return rec
}

// last returns the last request whose path ends with suffix.
func (u *standIn) last(t *testing.T, suffix string) received {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	for i := len(u.requests) - 1; i >= 0; i-- {
		if strings.HasSuffix(u.requests[i].Path, suffix) {
			return u.requests[i]
		}
	}
	t.Fatalf("the upstream received no request for %s", suffix)
	return received{}
}

func (u *standIn) all() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	b, _ := json.Marshal(u.requests)
	return string(b)
}

func serveStandIn(t *testing.T, h http.Handler) *standIn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &standIn{addr: ln.Addr().String(), sseGo: make(chan struct{}, 1)}
	u.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = u.srv.Serve(ln) }()
	t.Cleanup(func() { _ = u.srv.Close() })
	return u
}

// apiStandIn is an API that answers JSON, text, gzip, server-sent events,
// redirects, WebSocket echo, GraphQL and an OAuth2 token endpoint.
func apiStandIn(t *testing.T) *standIn {
	var u *standIn
	mux := http.NewServeMux()
	jsonOK := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		// A debug endpoint that echoes what it got, credentials included.
		rec := u.record(r)
		jsonOK(w, rec)
	})
	mux.HandleFunc("/users", func(w http.ResponseWriter, r *http.Request) {
		u.record(r)
		jsonOK(w, map[string]any{"data": []map[string]any{
			{"id": 1, "email": "jane.doe@example.com", "ssn": "123-45-6789"},
			{"id": 2, "email": "bob@example.org", "ssn": "987-65-4321"},
		}})
	})
	mux.HandleFunc("/users.gz", func(w http.ResponseWriter, r *http.Request) {
		u.record(r)
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write([]byte(`{"data":[{"id":1,"email":"gzip.person@example.com","card":"4111 1111 1111 1111"}]}`))
		_ = zw.Close()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		_, _ = w.Write(buf.Bytes())
	})
	mux.HandleFunc("/v1/users/", func(w http.ResponseWriter, r *http.Request) {
		u.record(r)
		if r.Method == http.MethodDelete {
			u.mu.Lock()
			u.deletes++
			u.mu.Unlock()
		}
		jsonOK(w, map[string]any{"deleted": r.Method == http.MethodDelete})
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		rec := u.record(r)
		jsonOK(w, map[string]any{"bytes": len(rec.Body)})
	})
	mux.HandleFunc("/admin/", func(w http.ResponseWriter, r *http.Request) {
		u.record(r)
		jsonOK(w, map[string]any{"admin": true})
	})
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		u.record(r)
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		fmt.Fprint(w, "event: user\ndata: {\"email\":\"first.event@example.com\"}\n\n")
		fl.Flush()
		select {
		case <-u.sseGo:
		case <-time.After(20 * time.Second):
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "event: user\ndata: second event for second.event@example.com\n\n")
		fl.Flush()
	})
	mux.HandleFunc("/redirect-same", func(w http.ResponseWriter, r *http.Request) {
		u.record(r)
		http.Redirect(w, r, "/users?page=2", http.StatusFound)
	})
	mux.HandleFunc("/redirect-away", func(w http.ResponseWriter, r *http.Request) {
		u.record(r)
		http.Redirect(w, r, "https://elsewhere.example/path?x=1&api_key="+r.URL.Query().Get("api_key"), http.StatusFound)
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		u.record(r)
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, data, err := c.Read(r.Context())
			if err != nil {
				return
			}
			u.mu.Lock()
			u.requests = append(u.requests, received{Method: "WS", Path: "/ws/message", Body: string(data)})
			u.mu.Unlock()
			if err := c.Write(r.Context(), typ, append([]byte("echo: "), data...)); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/graphql", func(w http.ResponseWriter, r *http.Request) {
		u.record(r)
		jsonOK(w, map[string]any{"data": map[string]any{"user": map[string]any{"email": "graph.user@example.com"}}})
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		user, pass, ok := r.BasicAuth()
		if !ok {
			user, pass = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		if user != "airlock-client" || pass != upstreamCredentials["HTTP_CLIENT_SECRET"] || r.PostForm.Get("grant_type") != "client_credentials" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		jsonOK(w, map[string]any{"access_token": oauthToken, "token_type": "Bearer", "expires_in": 3600})
	})
	u = serveStandIn(t, mux)
	return u
}

// llmStandIn speaks the OpenAI and Anthropic wire formats, streaming
// included, and records what it received.
func llmStandIn(t *testing.T) *standIn {
	var u *standIn
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		rec := u.record(r)
		var req struct {
			Model  string `json:"model"`
			Stream bool   `json:"stream"`
		}
		_ = json.Unmarshal([]byte(rec.Body), &req)
		if !req.Stream {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"id":"c1","object":"chat.completion","model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":null,`+
				`"tool_calls":[{"id":"t1","type":"function","function":{"name":"run_sql","arguments":"{\"sql\":\"DROP TABLE customers\"}"}}]},"finish_reason":"tool_calls"}],`+
				`"usage":{"prompt_tokens":42,"completion_tokens":7,"total_tokens":49}}`, req.Model)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for _, part := range []string{"Your card ", "is 4111 1111 1111 1111", " as you said."} {
			b, _ := json.Marshal(map[string]any{"id": "c2", "object": "chat.completion.chunk", "model": req.Model,
				"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": part}}}})
			fmt.Fprintf(w, "data: %s\n\n", b)
			fl.Flush()
			time.Sleep(20 * time.Millisecond)
		}
		fmt.Fprintf(w, "data: {\"id\":\"c2\",\"object\":\"chat.completion.chunk\",\"model\":%q,\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":3}}\n\n", req.Model)
		fmt.Fprint(w, "data: [DONE]\n\n")
		fl.Flush()
	})
	mux.HandleFunc("/v1/messages", func(w http.ResponseWriter, r *http.Request) {
		rec := u.record(r)
		if rec.Header.Get("X-Api-Key") != upstreamCredentials["HTTP_ANTHROPIC"] {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for _, ev := range []string{
			`event: message_start` + "\n" + `data: {"type":"message_start","message":{"id":"m1","model":"claude-test","usage":{"input_tokens":12,"output_tokens":1}}}`,
			`event: content_block_start` + "\n" + `data: {"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"tu1","name":"query_db","input":{}}}`,
			`event: content_block_delta` + "\n" + `data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"query\": \"DELETE FROM "}}`,
			`event: content_block_delta` + "\n" + `data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"orders\"}"}}`,
			`event: message_delta` + "\n" + `data: {"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}}`,
			`event: message_stop` + "\n" + `data: {"type":"message_stop"}`,
		} {
			fmt.Fprintf(w, "%s\n\n", ev)
			fl.Flush()
		}
	})
	u = serveStandIn(t, mux)
	return u
}

// grpcStandIn is a real gRPC server (the health service: a unary Check and
// a server-streaming Watch) and the descriptor set of its service.
func grpcStandIn(t *testing.T) (addr, descriptors string, hs *health.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	hs = health.NewServer()
	hs.SetServingStatus("shop", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, hs)
	reflection.Register(s)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	set := &descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{protodesc.ToFileDescriptorProto(healthpb.File_grpc_health_v1_health_proto)}}
	b, err := proto.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	descriptors = filepath.Join(t.TempDir(), "health.pb")
	if err := os.WriteFile(descriptors, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return ln.Addr().String(), descriptors, hs
}

// httpConfig fronts the stand-ins with HTTP connections of every kind.
func httpConfig(api, llm, grpcAddr, descriptors string) string {
	return fmt.Sprintf(`
listen:
  postgres: 127.0.0.1:0
  admin: 127.0.0.1:0
  http: 127.0.0.1:0
log:
  level: debug
handshake:
  timeout: 2s
identities:
  - name: dev
    groups: [developers]
    token_sha256: %[1]s
  - name: agent
    groups: [agents]
    token_sha256: %[2]s
policy:
  rules:
    reach.*: deny
    http.admin: deny
approvals:
  mode: hold
  timeout: 2m
  reviewers: [dev]
masking:
  detect:
    - {entity: email, strategy: partial}
    - {entity: payment_card, strategy: redact}
    - {entity: secrets, strategy: redact}
connections:
  - name: main
    protocol: postgres
    upstream:
      address: %[5]s
      database: postgres
      user: postgres
      password: ${TEST_UPSTREAM_PASSWORD}
      tls: {mode: disable}
    allow: [dev]
  - name: api
    protocol: http
    description: The shop's REST API.
    upstream:
      url: http://%[3]s
      credential: {bearer: "${HTTP_BEARER}"}
      routes:
        - {methods: [POST, PUT, DELETE], path: /admin/**, rule: http.admin}
      body: {max: 64KiB, inspect: 16KiB}
    allow: [dev, agent]
    masking:
      detect:
        - {entity: email, strategy: partial}
        - {entity: payment_card, strategy: redact}
        - {entity: secrets, strategy: redact}
      json_paths:
        - {path: "$.data[*].ssn", strategy: redact}
  - name: api-header
    protocol: http
    upstream:
      url: http://%[3]s
      credential: {header: {name: X-API-Key, value: "${HTTP_APIKEY}"}}
    allow: [dev, agent]
  - name: api-basic
    protocol: http
    upstream:
      url: http://%[3]s
      credential: {basic: {username: svc, password: "${HTTP_BASIC}"}}
    allow: [dev, agent]
  - name: api-query
    protocol: http
    upstream:
      url: http://%[3]s
      credential: {query: {name: api_key, value: "${HTTP_QUERY}"}}
    allow: [dev, agent]
  - name: api-oauth
    protocol: http
    upstream:
      url: http://%[3]s
      credential:
        oauth2: {token_url: "http://%[3]s/token", client_id: airlock-client, client_secret: "${HTTP_CLIENT_SECRET}", scopes: [read]}
    allow: [dev, agent]
  - name: gql
    protocol: http
    upstream:
      url: http://%[3]s/graphql
      preset: graphql
      credential: {bearer: "${HTTP_BEARER}"}
    allow: [dev, agent]
    policy:
      rules: {graphql.mutation: review}
  - name: openai
    protocol: http
    upstream:
      url: http://%[4]s
      preset: openai
      credential: {bearer: "${HTTP_OPENAI}"}
      models: [gpt-test]
    allow: [dev, agent]
  - name: anthropic
    protocol: http
    upstream:
      url: http://%[4]s
      preset: anthropic
      credential: {header: {name: x-api-key, value: "${HTTP_ANTHROPIC}"}}
    allow: [dev, agent]
  - name: grpc
    protocol: http
    upstream:
      url: http://%[6]s
      preset: grpc
      descriptors: %[7]s
      credential: {bearer: "${HTTP_BEARER}"}
      routes:
        - {path: /grpc.health.v1.Health/Check, rule: http.admin}
    allow: [dev, agent]
  - name: grpc-reflect
    protocol: http
    upstream:
      url: http://%[6]s
      preset: grpc
      reflection: true
    allow: [dev, agent]
`, devTokenHash, identity.HashToken(agentToken), api, llm, testenv.PostgresAddr, grpcAddr, descriptors)
}

// httpInstance is a running Airlock with its HTTP listener.
type httpInstance struct {
	*instance
	base string // http://host:port
}

var httpListenerRE = regexp.MustCompile(`msg=listening listener=http addr=([0-9.:]+)`)

// startHTTP runs Airlock on cfg with the stand-ins' credentials in its
// environment and waits for its HTTP listener.
func startHTTP(t *testing.T, cfg string) *httpInstance {
	t.Helper()
	var env []string
	for k, v := range upstreamCredentials {
		env = append(env, k+"="+v)
	}
	in := startAirlock(t, cfg, env...)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := httpListenerRE.FindStringSubmatch(in.Logs()); m != nil {
			return &httpInstance{instance: in, base: "http://" + m[1]}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no http listener\n%s", in.Logs())
	return nil
}

// answers collects every response body the tests saw, to look for
// credentials in them at the end.
type answers struct {
	mu  sync.Mutex
	all bytes.Buffer
}

func (a *answers) add(h http.Header, body string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, vs := range h {
		fmt.Fprintf(&a.all, "%s: %s\n", k, strings.Join(vs, ", "))
	}
	a.all.WriteString(body + "\n")
}

func (a *answers) String() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.all.String()
}
