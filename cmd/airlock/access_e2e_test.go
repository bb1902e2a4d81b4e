package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols/testenv"
)

// accessConfig is holdConfig with access requests: a writer role that
// lifts writes and schema changes.
const accessConfig = holdConfig + `  access:
    max_duration: 1h
    roles:
      writer:
        description: writes and schema changes without review
        rules: {"write.*": allow, "schema.*": allow}
`

// airlockCLI runs the airlock binary in the instance's directory (so that
// the configuration's relative paths resolve) with token; it returns the
// output and the exit status.
func airlockCLI(t *testing.T, in *instance, token string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(airlockBin(t), args...)
	cmd.Dir = in.dir
	cmd.Env = append(os.Environ(), "AIRLOCK_TOKEN="+token, "AIRLOCK_SERVER=http://"+in.admin, "TEST_UPSTREAM_PASSWORD="+upstreamSecret)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("airlock %v: %v", args, err)
	}
	return string(out), 0
}

func mustCLI(t *testing.T, in *instance, token string, args ...string) string {
	t.Helper()
	out, code := airlockCLI(t, in, token, args...)
	if code != 0 {
		t.Fatalf("airlock %v: exit %d\n%s", args, code, out)
	}
	return out
}

var accessIDRE = regexp.MustCompile(`access request (\w{24})`)

// grantAccess asks for the writer role as caller for d and approves it as
// dev; it returns the grant's id.
func grantAccess(t *testing.T, in *instance, callerToken string, d time.Duration) string {
	t.Helper()
	out := mustCLI(t, in, callerToken, "access", "request", "--connection", "main", "--role", "writer", "--for", d.String(), "--reason", "cleanup ticket 7")
	m := accessIDRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no access request id in %q", out)
	}
	if out := mustCLI(t, in, devToken, "access", "approve", m[1], "--reason", "ok"); !strings.Contains(out, "approved access request "+m[1]) {
		t.Fatalf("approve: %s", out)
	}
	return m[1]
}

// TestAccessGrantWindowAndRevoke: a grant lets a held class of statements
// run for its window, never lifts reach.*, ends on time (the statement is
// held again), and a revocation applies to the session's next command.
func TestAccessGrantWindowAndRevoke(t *testing.T) {
	t.Parallel()
	needPsql(t)
	db := testenv.PostgresDB(t)
	in := startAirlock(t, baseConfig(db, fmt.Sprintf(accessConfig, "30s"), ""))
	ctx := context.Background()
	admin := pgxConnect(t, testenv.PostgresURL(t, db))
	if _, err := admin.Exec(ctx, "CREATE TABLE t_acc (id int, v int); INSERT INTO t_acc SELECT g, 0 FROM generate_series(1, 10) g; CREATE TABLE t_scratch (id int)"); err != nil {
		t.Fatal(err)
	}
	const update = "UPDATE t_acc SET v = v + 1"
	// Long enough for the three commands below on a loaded machine.
	id := grantAccess(t, in, devToken, 10*time.Second)
	dev := pgxConnect(t, in.url("dev", devToken, "main", "default_query_exec_mode=simple_protocol"))
	if _, err := dev.Exec(ctx, update); err != nil {
		t.Fatalf("unbounded update under the grant: %v", err)
	}
	if _, err := dev.Exec(ctx, "DROP TABLE t_scratch"); err != nil {
		t.Fatalf("drop under the grant: %v", err)
	}
	if _, err := dev.Exec(ctx, "COPY (SELECT 1) TO PROGRAM 'true'"); pgCode(err) != "42501" || !strings.Contains(err.Error(), "reach.program") {
		t.Fatalf("reach.program under the grant: %v", err)
	}
	if m := in.metrics(t); !strings.Contains(m, `airlock_granted_commands_total{connection="main",effect="lifted",protocol="postgres"} 2`) {
		t.Errorf("metrics lack the lifted commands:\n%s", grep(m, "airlock_granted_commands_total"))
	}
	// The grant's window passes: the same statement is held again.
	deadline := time.Now().Add(25 * time.Second)
	for !strings.Contains(mustCLI(t, in, devToken, "access", "show", id), "ended") {
		if time.Now().After(deadline) {
			t.Fatal("the grant did not end")
		}
		time.Sleep(200 * time.Millisecond)
	}
	h := startHeld(t, in.dsn("dev", devToken, "main", "sslmode=disable"), update)
	_ = h.cmd.Process.Signal(syscall.SIGINT)
	h.wait(t)
	var v int
	if err := admin.QueryRow(ctx, "SELECT max(v) FROM t_acc").Scan(&v); err != nil || v != 1 {
		t.Fatalf("v = %d (%v): the held update ran", v, err)
	}
	// The session's commands carry the grant: sessions list and replay.
	dev.Close(ctx)
	var list string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		list = mustCLI(t, in, "", "sessions", "list", "--config", "airlock.yaml", "--grant", id, "--json")
		if strings.Contains(list, `"grants"`) || time.Now().After(deadline) {
			break
		}
	}
	var rows []struct {
		ID     string   `json:"id"`
		Grants []string `json:"grants"`
	}
	if err := json.Unmarshal([]byte(list), &rows); err != nil || len(rows) != 1 || len(rows[0].Grants) != 1 || rows[0].Grants[0] != id {
		t.Fatalf("sessions list --grant: %v\n%s", err, list)
	}
	var replay string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		replay, _ = airlockCLI(t, in, "", "replay", "--config", "airlock.yaml", rows[0].ID)
		if strings.Contains(replay, "end") && strings.Contains(replay, "under access grant "+id) || time.Now().After(deadline) {
			break
		}
	}
	if strings.Count(replay, "under access grant "+id) != 3 {
		t.Fatalf("the replay does not show the grant on each command:\n%s", replay)
	}

	// Revoked: the next command of the same session is judged without it.
	id = grantAccess(t, in, "agent-token", 10*time.Minute)
	agent := pgxConnect(t, in.url("agent", "agent-token", "main", "default_query_exec_mode=simple_protocol"))
	if _, err := agent.Exec(ctx, update); err != nil {
		t.Fatalf("agent under the grant: %v", err)
	}
	if out := mustCLI(t, in, "agent-token", "access", "revoke", id, "--reason", "done"); !strings.Contains(out, "revoked access request "+id) {
		t.Fatalf("revoke: %s", out)
	}
	if _, err := agent.Exec(ctx, update); pgCode(err) != "42501" {
		t.Fatalf("the command after the revocation: %v", err)
	}
	if out := mustCLI(t, in, devToken, "access", "list", "--status", "all"); !strings.Contains(out, "revoked") || !strings.Contains(out, "ended") {
		t.Fatalf("access list:\n%s", out)
	}
}

// TestAccessGrantAcrossReplicasAndRestart: two Airlock processes on one
// PostgreSQL store; a grant approved through one applies on the other, and
// on a process started after it was made.
func TestAccessGrantAcrossReplicasAndRestart(t *testing.T) {
	t.Parallel()
	db := testenv.PostgresDB(t)
	storeDB := testenv.PostgresDB(t)
	store := fmt.Sprintf("store: {driver: postgres, dsn: %q}\n", testenv.PostgresURL(t, storeDB))
	cfg := func(replica string) string {
		return baseConfig(db, fmt.Sprintf(accessConfig, "30s")+"  replica: "+replica+"\n"+store, "")
	}
	a := startAirlock(t, cfg("replica-a"))
	b := startAirlock(t, cfg("replica-b"))
	createTable(t, db, "t_rep")
	ctx := context.Background()
	onB := pgxConnect(t, b.url("agent", "agent-token", "main", "default_query_exec_mode=simple_protocol"))
	const update = "UPDATE t_rep SET id = id"
	if _, err := onB.Exec(ctx, update); pgCode(err) != "42501" {
		t.Fatalf("before the grant: %v", err)
	}
	id := grantAccess(t, a, "agent-token", 10*time.Minute)
	start := time.Now()
	for {
		_, err := onB.Exec(ctx, update)
		if err == nil {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("the grant made on replica A does not apply on B: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("grant applied on the other replica after %s", time.Since(start))
	a.stop()
	a2 := startAirlock(t, cfg("replica-a"))
	onA := pgxConnect(t, a2.url("agent", "agent-token", "main", "default_query_exec_mode=simple_protocol"))
	if _, err := onA.Exec(ctx, update); err != nil {
		t.Fatalf("the grant after a restart: %v", err)
	}
	mustCLI(t, b, devToken, "access", "revoke", id)
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		if _, err := onA.Exec(ctx, update); pgCode(err) == "42501" {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("the revocation on B does not apply on the restarted A")
		}
	}
}

// TestPreviewOfHeldCommands: a held DELETE shows the planner's estimate
// and the exact count, in approvals show and in the recording; a preview
// of a statement on a locked table times out without delaying the
// request past its timeout.
func TestPreviewOfHeldCommands(t *testing.T) {
	t.Parallel()
	db := testenv.PostgresDB(t)
	extra := fmt.Sprintf(holdConfig, "30s") + "  preview: {timeout: 1s, exact_count: true}\npolicy:\n  rules: {write.delete: review}\n"
	in := startAirlock(t, baseConfig(db, extra, ""))
	ctx := context.Background()
	admin := pgxConnect(t, testenv.PostgresURL(t, db))
	if _, err := admin.Exec(ctx, `CREATE TABLE t_pv (id int PRIMARY KEY, v text);
		INSERT INTO t_pv SELECT g, 'x' FROM generate_series(1, 1000) g; ANALYZE t_pv`); err != nil {
		t.Fatal(err)
	}
	agent := pgxConnect(t, in.url("agent", "agent-token", "main", "default_query_exec_mode=simple_protocol"))
	const del = "DELETE FROM t_pv WHERE id <= 300"
	_, err := agent.Exec(ctx, del)
	id := approvalRequestOf(t, err)
	show := mustCLI(t, in, devToken, "approvals", "show", id)
	if !regexp.MustCompile(`delete on table public\.t_pv: about (2[5-9]\d|3[0-4]\d) rows \(planner estimate\); 300 rows \(exact count\)`).MatchString(show) {
		t.Fatalf("approvals show lacks the preview:\n%s", show)
	}
	var n int
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM t_pv").Scan(&n); err != nil || n != 1000 {
		t.Fatalf("rows = %d (%v): the preview ran the statement", n, err)
	}
	mustCLI(t, in, devToken, "approvals", "approve", id)
	if _, err := agent.Exec(ctx, del); err != nil {
		t.Fatalf("approved retry: %v", err)
	}
	var req struct {
		SessionID string `json:"session_id"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, in, devToken, "approvals", "show", "--json", id)), &req); err != nil {
		t.Fatal(err)
	}

	// A lock held by another session: the preview gives up in time.
	locker, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := locker.Exec(ctx, "LOCK TABLE t_pv IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = agent.Exec(ctx, "DELETE FROM t_pv WHERE id = 999")
	took := time.Since(start)
	locked := approvalRequestOf(t, err)
	_ = locker.Rollback(ctx)
	if took > 5*time.Second {
		t.Errorf("the request waited %s for its preview (timeout 1s)", took)
	}
	if show := mustCLI(t, in, devToken, "approvals", "show", locked); !strings.Contains(show, "preview timeout") {
		t.Fatalf("the locked preview:\n%s", show)
	}

	// The recording keeps the preview with the decision.
	agent.Close(ctx)
	var frames []map[string]any
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, code := airlockCLI(t, in, "", "replay", "--config", "airlock.yaml", "--json", req.SessionID)
		frames = frames[:0]
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var f map[string]any
			if json.Unmarshal([]byte(line), &f) == nil {
				frames = append(frames, f)
			}
		}
		if code == 0 || time.Now().After(deadline) {
			break
		}
	}
	previews := 0
	for _, f := range frames {
		if p, ok := f["preview"].(map[string]any); ok && f["type"] == "decision" {
			previews++
			if effects, _ := p["effects"].([]any); p["status"] == "ok" && len(effects) == 1 {
				if e := effects[0].(map[string]any); e["exact_rows"] != 300.0 {
					t.Errorf("recorded effect %v", e)
				}
			}
		}
	}
	if previews < 2 {
		t.Fatalf("the recording keeps %d previews, want the refusal's and the approved run's:\n%v", previews, frames)
	}
}

// TestAuditModeAndPolicyDiff: in audit mode a DROP that the policy would
// hold runs, is recorded as would-review and counted; replaying the
// session against a stricter policy lists exactly the statements whose
// decision changes.
func TestAuditModeAndPolicyDiff(t *testing.T) {
	t.Parallel()
	db := testenv.PostgresDB(t)
	policyBlock := "policy:\n  identities:\n    - principals: [dev]\n      enforce: false\n"
	cfg := baseConfig(db, fmt.Sprintf(holdConfig, "30s")+policyBlock, "")
	in := startAirlock(t, cfg)
	ctx := context.Background()
	admin := pgxConnect(t, testenv.PostgresURL(t, db))
	if _, err := admin.Exec(ctx, "CREATE TABLE t_audit (id int); CREATE TABLE t_keep (id int, v int)"); err != nil {
		t.Fatal(err)
	}
	dev := pgxConnect(t, in.url("dev", devToken, "main", "default_query_exec_mode=simple_protocol"))
	for _, q := range []string{"SELECT 1", "INSERT INTO t_keep VALUES (1, 1)", "UPDATE t_keep SET v = 2 WHERE id = 1", "DROP TABLE t_audit", "SELECT count(*) FROM t_keep"} {
		if _, err := dev.Exec(ctx, q); err != nil {
			t.Fatalf("%s in audit mode: %v", q, err)
		}
	}
	if tableExists(t, db, "t_audit") {
		t.Fatal("the DROP did not run in audit mode")
	}
	m := in.metrics(t)
	if !strings.Contains(m, `airlock_commands_total{action="review",connection="main",enforced="false",protocol="postgres",risk="high"} 1`) {
		t.Errorf("metrics lack the would-be hold:\n%s", grep(m, "airlock_commands_total"))
	}
	if !strings.Contains(in.Logs(), "audit mode: command allowed that the policy would hold for review") {
		t.Error("the would-be hold is not logged")
	}
	dev.Close(ctx)
	var rows []struct {
		ID string `json:"id"`
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		sessions := mustCLI(t, in, "", "sessions", "list", "--config", "airlock.yaml", "--identity", "dev", "--json")
		if err := json.Unmarshal([]byte(sessions), &rows); err != nil {
			t.Fatalf("sessions: %v\n%s", err, sessions)
		}
		if len(rows) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessions:\n%s", sessions)
		}
	}
	session := rows[0].ID
	var replay string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var code int
		replay, code = airlockCLI(t, in, "", "replay", "--config", "airlock.yaml", session)
		if code == 0 || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(replay, "audit mode: the policy would review; not enforced") {
		t.Fatalf("the replay does not show the would-be review:\n%s", replay)
	}

	// The same policy changes nothing; a stricter one changes exactly the
	// INSERT and the UPDATE.
	if out, code := airlockCLI(t, in, "", "classify", "--config", "airlock.yaml", "--diff", session); code != 0 || !strings.Contains(out, "0 of 5 decided commands change") {
		t.Fatalf("diff against the same policy: exit %d\n%s", code, out)
	}
	stricter := strings.Replace(cfg, policyBlock, "policy:\n  rules: {write.insert: deny, write.update: review}\n", 1)
	if err := os.WriteFile(filepath.Join(in.dir, "stricter.yaml"), []byte(stricter), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := airlockCLI(t, in, "", "classify", "--config", "stricter.yaml", "--diff", "--json", session)
	if code != 1 {
		t.Fatalf("diff against a stricter policy: exit %d\n%s", code, out)
	}
	var changes []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var c struct {
			Command, Recorded, Candidate string
		}
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		changes = append(changes, c.Command+": "+c.Recorded+" -> "+c.Candidate)
	}
	want := []string{"INSERT INTO t_keep VALUES (1, 1): allow -> deny", "UPDATE t_keep SET v = 2 WHERE id = 1: allow -> review"}
	if strings.Join(changes, "\n") != strings.Join(want, "\n") {
		t.Fatalf("changes:\n%s\nwant:\n%s", strings.Join(changes, "\n"), strings.Join(want, "\n"))
	}
}
