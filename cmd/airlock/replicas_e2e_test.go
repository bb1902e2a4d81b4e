package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/session/identity"
	"github.com/airlock-gw/airlock/session/recording"
)

// replicaConfig is replica name's configuration: the PostgreSQL store in
// database storeDB shared with the other replica, heartbeats every 200ms
// and a replica taken for gone after 1.5s; INSERT goes to review.
func replicaConfig(name, storeDB, dataDB string) string {
	return fmt.Sprintf(`
listen:
  postgres: 127.0.0.1:0
  admin: 127.0.0.1:0
  http: 127.0.0.1:0
log:
  level: debug
  format: text
store:
  driver: postgres
  dsn: "%[1]s"
  heartbeat: 200ms
  stale_after: 1500ms
readiness:
  interval: 300ms
  upstreams: false
identities:
  - name: dev
    groups: [developers]
    token_sha256: %[2]s
  - name: agent
    groups: [agents]
    token_sha256: %[3]s
  - name: ops
    groups: [ops]
    token_sha256: %[7]s
policy:
  rules:
    write.insert: review
approvals:
  mode: hold
  timeout: 2m
  reviewers: [ops]
  replica: %[4]s
connections:
  - name: main
    protocol: postgres
    upstream: {address: "%[5]s", database: %[6]s, user: postgres, password: "${TEST_UPSTREAM_PASSWORD}", tls: {mode: disable}}
    allow: [dev, agent]
`, "postgres://postgres@"+testenv.PostgresAddr+"/"+storeDB+"?sslmode=disable", devTokenHash, identity.HashToken(agentToken), name, testenv.PostgresAddr, dataDB,
		identity.HashToken(opsToken))
}

// haproxy is HAProxy in TCP mode in front of the replicas' PostgreSQL,
// agent API and admin listeners, checking each replica's /readyz.
type haproxy struct {
	pg, http, admin string
}

func startHAProxy(t *testing.T, replicas ...*instance) *haproxy {
	t.Helper()
	bin := "/usr/sbin/haproxy"
	if _, err := os.Stat(bin); err != nil {
		if testenv.InCI() {
			t.Fatal("haproxy is not installed")
		}
		t.Skip("haproxy is not installed")
	}
	free := func() string { return fmt.Sprintf("127.0.0.1:%d", freePort(t)) }
	h := &haproxy{pg: free(), http: free(), admin: free()}
	var cfg strings.Builder
	cfg.WriteString(`global
  maxconn 1000
defaults
  mode tcp
  timeout connect 2s
  timeout client 2m
  timeout server 2m
  retries 3
  option redispatch
  default-server inter 200ms fastinter 200ms downinter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
`)
	for _, fe := range []struct{ name, bind string }{{"postgres", h.pg}, {"http", h.http}, {"admin", h.admin}} {
		fmt.Fprintf(&cfg, "frontend %s\n  bind %s\n  default_backend %s\nbackend %s\n  balance roundrobin\n  option httpchk GET /readyz\n",
			fe.name, fe.bind, fe.name, fe.name)
		for i, in := range replicas {
			_, adminPort, _ := net.SplitHostPort(in.admin)
			fmt.Fprintf(&cfg, "  server r%d %s check port %s\n", i, in.addr(fe.name), adminPort)
		}
	}
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-f", path, "-db")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if !pollUntil(10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", h.admin, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait() // its output is complete, and no longer written
		t.Fatalf("haproxy did not start:\n%s", logs.String())
	}
	time.Sleep(time.Second) // the first health checks pass
	return h
}

// kill ends the replica with SIGKILL, as a crash or a lost machine would.
func (in *instance) kill(t *testing.T) {
	t.Helper()
	in.stopped.Do(func() {})
	if err := in.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-in.waitErr:
	case <-time.After(10 * time.Second):
		t.Fatal("the killed replica did not exit")
	}
}

// approval is a request as GET /api/approvals/{id} answers it.
type approval struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Replica string `json:"replica"`
}

// adminCall calls the admin API at addr as the reviewer ops.
func adminCall(t *testing.T, addr, method, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(`{"reason":"replicas"}`))
	req.Header.Set("Authorization", "Bearer "+opsToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: status %d: %s", method, path, resp.StatusCode, b)
	}
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
}

// agentQuery posts sql to connection main's query API at addr as agent, on
// a connection of its own (so HAProxy balances each call).
func agentQuery(t *testing.T, addr, sql string) (int, engineAnswer) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"sql": sql})
	req, _ := http.NewRequest("POST", "http://"+addr+"/v1/connections/main/query", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+agentToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("agent query: %v", err)
	}
	defer resp.Body.Close()
	var ans engineAnswer
	_ = json.NewDecoder(resp.Body).Decode(&ans)
	return resp.StatusCode, ans
}

// countRows counts ledger rows with note.
func countRows(t *testing.T, db, note string) int {
	t.Helper()
	var n int
	c := pgxConnect(t, testenv.PostgresURL(t, db))
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM ledger WHERE note = $1", note).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// replicaSessions lists the session index through replica in's CLI.
func replicaSessions(t *testing.T, in *instance) []struct {
	ID        string `json:"id"`
	Node      string `json:"node"`
	End       string `json:"end"`
	EndReason string `json:"end_reason"`
} {
	t.Helper()
	out := mustCLI(t, in, devToken, "sessions", "list", "--json", "--limit", "1000")
	var list []struct {
		ID        string `json:"id"`
		Node      string `json:"node"`
		End       string `json:"end"`
		EndReason string `json:"end_reason"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("sessions list: %v\n%s", err, out)
	}
	return list
}

// dialThrough opens n pgx sessions as dev through HAProxy.
func dialThrough(t *testing.T, addr string, n int) []*pgx.Conn {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	url := fmt.Sprintf("postgres://dev:%s@%s:%s/main?sslmode=disable&connect_timeout=10", devToken, host, port)
	conns := make([]*pgx.Conn, n)
	for i := range conns {
		conns[i] = pgxConnect(t, url)
	}
	return conns
}

// TestReplicasBehindHAProxy: two replicas share a PostgreSQL store behind
// HAProxy. One is killed with SIGKILL while a psql command waits on it for
// approval and an agent's retry-mode request made on it has been approved.
// Its clients reconnect through HAProxy to the survivor; the survivor
// withdraws the held request (asked again, it is held anew and runs once
// approved), runs the approved retry exactly once, and closes the killed
// replica's sessions in the index as abandoned.
func TestReplicasBehindHAProxy(t *testing.T) {
	needPsql(t)
	storeDB, dataDB := testenv.PostgresDB(t), testenv.PostgresDB(t)
	c := pgxConnect(t, testenv.PostgresURL(t, dataDB))
	if _, err := c.Exec(context.Background(), "CREATE TABLE ledger (id serial PRIMARY KEY, note text)"); err != nil {
		t.Fatal(err)
	}
	replicas := map[string]*instance{
		"replica-a": startAirlock(t, replicaConfig("replica-a", storeDB, dataDB)),
		"replica-b": startAirlock(t, replicaConfig("replica-b", storeDB, dataDB)),
	}
	lb := startHAProxy(t, replicas["replica-a"], replicas["replica-b"])
	host, port, _ := net.SplitHostPort(lb.pg)
	dsn := fmt.Sprintf("host=%s port=%s user=dev password=%s dbname=main sslmode=disable", host, port, devToken)

	held := startHeld(t, dsn, "INSERT INTO ledger (note) VALUES ('held')")
	var req approval
	adminCall(t, lb.admin, "GET", "/api/approvals/"+held.id, &req)
	doomed, survivorName := replicas[req.Replica], "replica-a"
	if req.Replica == "replica-a" {
		survivorName = "replica-b"
	}
	survivor := replicas[survivorName]
	retryID, retryNote := retryRequestOn(t, lb, req.Replica)
	adminCall(t, lb.admin, "POST", "/api/approvals/"+retryID+"/approve", nil)
	sessions := dialThrough(t, lb.pg, 4)

	doomed.kill(t)
	if out := held.wait(t); strings.Contains(out, "INSERT 0 1") {
		t.Fatalf("the held command ran on a killed replica:\n%s", out)
	}
	reconnected := 0
	for i, s := range sessions {
		if _, err := s.Exec(context.Background(), "SELECT 1"); err == nil {
			continue
		}
		reconnected++
		sessions[i] = dialThrough(t, lb.pg, 1)[0]
		if _, err := sessions[i].Exec(context.Background(), "SELECT 1"); err != nil {
			t.Fatalf("after reconnecting through HAProxy: %v", err)
		}
	}
	if reconnected == 0 {
		t.Error("no session was on the killed replica")
	}

	waitAbandoned(t, survivor, req.Replica, held.id, lb)

	// Asked again, the held command is held on the survivor and runs once
	// approved.
	again := startHeld(t, dsn, "INSERT INTO ledger (note) VALUES ('held')")
	if again.id == held.id {
		t.Fatal("the withdrawn request was reused")
	}
	adminCall(t, lb.admin, "POST", "/api/approvals/"+again.id+"/approve", nil)
	if out := again.wait(t); !strings.Contains(out, "INSERT 0 1") {
		t.Fatalf("the request asked again did not run:\n%s", out)
	}
	// The retry approved before the kill runs once, on the survivor.
	if status, ans := agentQuery(t, lb.http, "INSERT INTO ledger (note) VALUES ('"+retryNote+"')"); status != 200 || ans.Status != "completed" {
		t.Fatalf("the approved retry on the survivor: %d %+v", status, ans)
	}
	if status, ans := agentQuery(t, lb.http, "INSERT INTO ledger (note) VALUES ('"+retryNote+"')"); status != 202 || ans.Approval == nil || ans.Approval.ID == retryID {
		t.Fatalf("an approval ran twice: %d %+v", status, ans)
	}
	if n, m := countRows(t, dataDB, "held"), countRows(t, dataDB, retryNote); n != 1 || m != 1 {
		t.Errorf("rows: %d held, %d retried; want one each", n, m)
	}
	// The killed replica's recordings end early but are not damaged.
	for _, f := range recordings(t, doomed) {
		if rep, err := recording.VerifyFile(f, nil); err != nil ||
			(rep.Status != recording.Intact && rep.Status != recording.Unfinished) {
			t.Errorf("recording %s of the killed replica: %v %s", filepath.Base(f), err, rep)
		}
	}
}

// retryRequestOn has the agent ask, through HAProxy, for an INSERT that
// review holds, until the request is made on replica; the others are
// denied. It returns the request's id and the note it inserts.
func retryRequestOn(t *testing.T, lb *haproxy, replica string) (id, note string) {
	t.Helper()
	for i := range 8 {
		note = fmt.Sprintf("retry-%d", i)
		status, ans := agentQuery(t, lb.http, "INSERT INTO ledger (note) VALUES ('"+note+"')")
		if status != 202 || ans.Approval == nil {
			t.Fatalf("agent INSERT: %d %+v", status, ans)
		}
		var req approval
		adminCall(t, lb.admin, "GET", "/api/approvals/"+ans.Approval.ID, &req)
		if req.Replica == replica {
			return req.ID, note
		}
		adminCall(t, lb.admin, "POST", "/api/approvals/"+req.ID+"/deny", nil)
	}
	t.Fatalf("no agent request reached %s through HAProxy", replica)
	return "", ""
}

// waitAbandoned waits until the survivor has withdrawn the killed
// replica's held request and closed its sessions in the index.
func waitAbandoned(t *testing.T, survivor *instance, dead, heldID string, lb *haproxy) {
	t.Helper()
	var req approval
	if !pollUntil(15*time.Second, func() bool {
		adminCall(t, lb.admin, "GET", "/api/approvals/"+heldID, &req)
		return req.Status == "expired"
	}) {
		t.Fatalf("the killed replica's held request is %s, want expired\n%s", req.Status, survivor.Logs())
	}
	var abandoned int
	if !pollUntil(15*time.Second, func() bool {
		abandoned = 0
		for _, s := range replicaSessions(t, survivor) {
			if s.Node != dead {
				continue
			}
			if s.End == "" {
				return false
			}
			if strings.Contains(s.EndReason, "abandoned: replica "+dead+" stopped") {
				abandoned++
			}
		}
		return abandoned > 0
	}) {
		t.Fatalf("the killed replica's sessions are still active in the index (or none was abandoned):\n%s",
			mustCLI(t, survivor, devToken, "sessions", "list"))
	}
	survivor.waitLog(t, "replica stopped heartbeating", 5*time.Second)
}
