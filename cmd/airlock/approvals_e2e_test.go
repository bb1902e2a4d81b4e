package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/airlock-gw/airlock/protocols/testenv"
)

const holdConfig = `
approvals:
  mode: hold
  timeout: %s
  reviewers: [dev]
  self_approval: true
  overrides:
    - principals: [agent]
      mode: retry
`

// heldPsql runs a psql command that Airlock will hold; it returns as soon
// as the approval notice shows, with the request id and a way to wait for
// psql's end.
type heldPsql struct {
	id   string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan error
}

func (h *heldPsql) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.out.Write(p)
}

func (h *heldPsql) output() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.out.String()
}

var requestIDRE = regexp.MustCompile(`approval required: request (\w+)`)

func startHeld(t *testing.T, dsn string, sql ...string) *heldPsql {
	t.Helper()
	needPsql(t)
	h := &heldPsql{done: make(chan error, 1)}
	args := []string{"-X", "--no-psqlrc", "-v", "ON_ERROR_STOP=0", dsn}
	for _, s := range sql {
		args = append(args, "-c", s)
	}
	h.cmd = exec.Command("psql", args...)
	h.cmd.Stdout, h.cmd.Stderr = h, h
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { h.done <- h.cmd.Wait() }()
	t.Cleanup(func() { _ = h.cmd.Process.Kill() })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := requestIDRE.FindStringSubmatch(h.output()); m != nil {
			h.id = m[1]
			return h
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no approval notice from psql:\n%s", h.output())
	return nil
}

func (h *heldPsql) wait(t *testing.T) string {
	t.Helper()
	select {
	case <-h.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("psql still waiting:\n%s", h.output())
	}
	return h.output()
}

// approvalsCLI runs `airlock approvals ...` against an instance as dev.
func approvalsCLI(t *testing.T, in *instance, args ...string) string {
	t.Helper()
	cmd := exec.Command(airlockBin(t), append([]string{"approvals"}, args...)...)
	cmd.Env = append(os.Environ(), "AIRLOCK_TOKEN="+devToken, "AIRLOCK_SERVER=http://"+in.admin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("airlock approvals %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func tableExists(t *testing.T, db, table string) bool {
	t.Helper()
	c := pgxConnect(t, testenv.PostgresURL(t, db))
	var ok bool
	if err := c.QueryRow(context.Background(), "SELECT to_regclass($1) IS NOT NULL", table).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func createTable(t *testing.T, db, table string) {
	t.Helper()
	c := pgxConnect(t, testenv.PostgresURL(t, db))
	if _, err := c.Exec(context.Background(), "CREATE TABLE "+table+" (id int)"); err != nil {
		t.Fatal(err)
	}
}

func TestPolicyDeniesDropAndSessionGoesOn(t *testing.T) {
	needPsql(t)
	db := testenv.PostgresDB(t)
	in := startAirlock(t, baseConfig(db, "policy:\n  rules: {schema.drop: deny}\n", ""))
	createTable(t, db, "keepme")
	dsn := in.dsn("dev", devToken, "main", "sslmode=disable")
	out, _ := psql(t, dsn, "", "-v", "ON_ERROR_STOP=0",
		"-c", "DROP TABLE keepme",
		"-c", `/* harmless? */ dRoP   TABLE IF EXISTS "keepme" CASCADE`,
		"-c", "SELECT 'still here' AS status",
		"-c", "SELECT 1; DROP TABLE public.keepme",
		"-c", "SELECT 'DROP TABLE keepme' AS data")
	if strings.Count(out, "ERROR:  Airlock refused the command") != 3 || !strings.Contains(out, "schema.drop") {
		t.Fatalf("expected three refusals naming schema.drop:\n%s", out)
	}
	if !strings.Contains(out, "still here") || !strings.Contains(out, " DROP TABLE keepme") {
		t.Fatalf("session not usable, or a string literal was refused:\n%s", out)
	}
	if !tableExists(t, db, "keepme") {
		t.Fatal("the denied DROP TABLE dropped the table")
	}
	// Reach beyond the database is denied by default; the extended
	// protocol is refused at Parse.
	c := pgxConnect(t, in.url("dev", devToken, "main", ""))
	_, err := c.Exec(context.Background(), "COPY (SELECT 1) TO PROGRAM 'id'")
	if pgCode(err) != "42501" || !strings.Contains(err.Error(), "reach.program") {
		t.Fatalf("COPY TO PROGRAM: %v", err)
	}
	var v int
	if err := c.QueryRow(context.Background(), "SELECT $1::int", 5).Scan(&v); err != nil || v != 5 {
		t.Fatalf("after refusal: %v", err)
	}
	m := in.metrics(t)
	if !strings.Contains(m, `airlock_commands_total{action="deny",connection="main",enforced="true",protocol="postgres",risk="critical"} 1`) {
		t.Errorf("metrics lack the denied critical command:\n%s", grep(m, "airlock_commands_total"))
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestApprovalHoldApproveDenyTimeoutCancel(t *testing.T) {
	t.Parallel()
	db := testenv.PostgresDB(t)
	in := startAirlock(t, baseConfig(db, fmt.Sprintf(holdConfig, "4s"), ""))
	dsn := in.dsn("dev", devToken, "main", "sslmode=disable")

	t.Run("approve", func(t *testing.T) {
		createTable(t, db, "t_approve")
		h := startHeld(t, dsn, "DROP TABLE t_approve")
		if !strings.Contains(approvalsCLI(t, in, "list"), h.id) {
			t.Fatal("pending request not listed")
		}
		approvalsCLI(t, in, "approve", h.id, "--reason", "planned cleanup")
		if out := h.wait(t); !strings.Contains(out, "DROP TABLE") {
			t.Fatalf("held command did not complete:\n%s", out)
		}
		if tableExists(t, db, "t_approve") {
			t.Fatal("approved DROP TABLE did not run")
		}
	})
	t.Run("deny", func(t *testing.T) {
		createTable(t, db, "t_deny")
		h := startHeld(t, dsn, "DROP TABLE t_deny", "SELECT 'usable' AS after")
		approvalsCLI(t, in, "deny", h.id, "--reason", "not during business hours")
		out := h.wait(t)
		if !strings.Contains(out, "not during business hours") || !strings.Contains(out, "dev") || !strings.Contains(out, "usable") {
			t.Fatalf("deny not reported with reviewer and reason, or session unusable:\n%s", out)
		}
		if !tableExists(t, db, "t_deny") {
			t.Fatal("denied DROP TABLE ran")
		}
	})
	t.Run("timeout", func(t *testing.T) {
		createTable(t, db, "t_timeout")
		h := startHeld(t, dsn, "DROP TABLE t_timeout", "SELECT 'usable' AS after")
		out := h.wait(t)
		if !strings.Contains(out, "ERROR") || !strings.Contains(out, "usable") {
			t.Fatalf("timeout not refused, or session unusable:\n%s", out)
		}
		if !tableExists(t, db, "t_timeout") {
			t.Fatal("timed-out DROP TABLE ran")
		}
		if show := approvalsCLI(t, in, "show", h.id); !strings.Contains(show, "expired") {
			t.Fatalf("request not expired:\n%s", show)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		createTable(t, db, "t_cancel")
		h := startHeld(t, dsn, "DROP TABLE t_cancel")
		_ = h.cmd.Process.Signal(syscall.SIGINT)
		out := h.wait(t)
		if !strings.Contains(out, "canceling statement due to user request") {
			t.Fatalf("cancel not reported:\n%s", out)
		}
		if show := approvalsCLI(t, in, "show", h.id); !strings.Contains(show, "cancelled") {
			t.Fatalf("request not cancelled:\n%s", show)
		}
		// Approving the cancelled request is refused and runs nothing.
		cmd := exec.Command(airlockBin(t), "approvals", "approve", h.id)
		cmd.Env = append(os.Environ(), "AIRLOCK_TOKEN="+devToken, "AIRLOCK_SERVER=http://"+in.admin)
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Fatalf("approving a cancelled request succeeded: %s", out)
		}
		time.Sleep(200 * time.Millisecond)
		if !tableExists(t, db, "t_cancel") {
			t.Fatal("cancelled DROP TABLE ran")
		}
	})
	t.Run("client hangs up", func(t *testing.T) {
		createTable(t, db, "t_gone")
		h := startHeld(t, dsn, "DROP TABLE t_gone")
		_ = h.cmd.Process.Kill()
		h.wait(t)
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(approvalsCLI(t, in, "show", h.id), "cancelled") {
			if time.Now().After(deadline) {
				t.Fatal("request of a vanished client not cancelled")
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !tableExists(t, db, "t_gone") {
			t.Fatal("DROP TABLE of a vanished client ran")
		}
	})
}

func TestApprovalRetryForAgents(t *testing.T) {
	db := testenv.PostgresDB(t)
	in := startAirlock(t, baseConfig(db, fmt.Sprintf(holdConfig, "5m"), ""))
	createTable(t, db, "t_agent")
	ctx := context.Background()
	c := pgxConnect(t, in.url("agent", "agent-token", "main", "default_query_exec_mode=simple_protocol"))
	_, err := c.Exec(ctx, "DROP TABLE t_agent")
	m := requestIDRE.FindStringSubmatch(fmt.Sprint(err))
	if pgCode(err) != "42501" || m == nil {
		// The retry refusal names the request in its message or detail.
		m = regexp.MustCompile(`request (\w{8,})`).FindStringSubmatch(fmt.Sprint(err))
		if pgCode(err) != "42501" || m == nil {
			t.Fatalf("want an immediate refusal naming the request, got %v", err)
		}
	}
	id := m[1]
	// A different command is not covered by the approval.
	if _, err := c.Exec(ctx, "DROP TABLE IF EXISTS t_agent"); pgCode(err) != "42501" {
		t.Fatalf("other command: %v", err)
	}
	approvalsCLI(t, in, "approve", id)
	if _, err := c.Exec(ctx, "DROP TABLE t_agent"); err != nil {
		t.Fatalf("approved retry refused: %v", err)
	}
	if tableExists(t, db, "t_agent") {
		t.Fatal("approved retry did not run")
	}
	createTable(t, db, "t_agent")
	if _, err := c.Exec(ctx, "DROP TABLE t_agent"); pgCode(err) != "42501" {
		t.Fatalf("an approval ran twice: %v", err)
	}
}

// approvalRequestOf returns the approval request a refusal names.
func approvalRequestOf(t *testing.T, err error) string {
	t.Helper()
	m := regexp.MustCompile(`request (\w{8,})`).FindStringSubmatch(fmt.Sprint(err))
	if pgCode(err) != "42501" || m == nil {
		t.Fatalf("want a refusal naming an approval request, got %v", err)
	}
	return m[1]
}

// TestApprovalCoversOnePreparedRun: an approval lets one run of a prepared
// statement through. Executing the statement again asks for a new
// approval, as running the command again would.
func TestApprovalCoversOnePreparedRun(t *testing.T) {
	db := testenv.PostgresDB(t)
	in := startAirlock(t, baseConfig(db, fmt.Sprintf(holdConfig, "5m"), ""))
	ctx := context.Background()
	c := pgxConnect(t, in.url("agent", "agent-token", "main", ""))
	pc := c.PgConn()
	createTable(t, db, "t_prepared")
	const drop = "DROP TABLE t_prepared"
	_, err := pc.Prepare(ctx, "drop_it", drop, nil)
	approvalsCLI(t, in, "approve", approvalRequestOf(t, err))
	if _, err := pc.Prepare(ctx, "drop_it", drop, nil); err != nil {
		t.Fatalf("approved Prepare refused: %v", err)
	}
	run := func() error { return pc.ExecPrepared(ctx, "drop_it", nil, nil, nil).Read().Err }
	if err := run(); err != nil {
		t.Fatalf("approved run: %v", err)
	}
	if tableExists(t, db, "t_prepared") {
		t.Fatal("approved run did not drop the table")
	}
	createTable(t, db, "t_prepared")
	id := approvalRequestOf(t, run())
	if !tableExists(t, db, "t_prepared") {
		t.Fatal("a second run of the prepared statement went through on the first approval")
	}
	// The private name is readable in pg_prepared_statements; using it
	// directly, by Bind or by EXECUTE in SQL, needs an approval too.
	var private string
	if err := c.QueryRow(ctx, "SELECT name FROM pg_prepared_statements WHERE statement = $1", drop).Scan(&private); err != nil {
		t.Fatal(err)
	}
	approvalRequestOf(t, pc.ExecPrepared(ctx, private, nil, nil, nil).Read().Err)
	_, err = c.Exec(ctx, "EXECUTE "+private)
	approvalRequestOf(t, err)
	if !tableExists(t, db, "t_prepared") {
		t.Fatal("the approved statement ran again through its private name")
	}
	approvalsCLI(t, in, "approve", id)
	if err := run(); err != nil {
		t.Fatalf("run on its own approval: %v", err)
	}
	if tableExists(t, db, "t_prepared") {
		t.Fatal("the approved second run did not drop the table")
	}
}

// TestApprovalCoversOneSQLPreparedRun: the same for PREPARE and EXECUTE in
// SQL. EXECUTE alone is medium risk and allowed, so an approved PREPARE
// would otherwise run its statement any number of times.
func TestApprovalCoversOneSQLPreparedRun(t *testing.T) {
	db := testenv.PostgresDB(t)
	in := startAirlock(t, baseConfig(db, fmt.Sprintf(holdConfig, "5m"), ""))
	ctx := context.Background()
	c := pgxConnect(t, in.url("agent", "agent-token", "main", "default_query_exec_mode=simple_protocol"))
	admin := pgxConnect(t, testenv.PostgresURL(t, db))
	if _, err := admin.Exec(ctx, "CREATE TABLE t_sqlprep (v int); INSERT INTO t_sqlprep VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	rows := func() int {
		var n int
		if err := admin.QueryRow(ctx, "SELECT count(*) FROM t_sqlprep").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	refill := func() {
		if _, err := admin.Exec(ctx, "INSERT INTO t_sqlprep VALUES (1)"); err != nil {
			t.Fatal(err)
		}
	}
	const prepare = "PREPARE wipe AS DELETE FROM t_sqlprep"
	_, err := c.Exec(ctx, prepare)
	approvalsCLI(t, in, "approve", approvalRequestOf(t, err))
	if _, err := c.Exec(ctx, prepare); err != nil {
		t.Fatalf("approved PREPARE refused: %v", err)
	}
	if _, err := c.Exec(ctx, "EXECUTE wipe"); err != nil {
		t.Fatalf("the approved run: %v", err)
	}
	if rows() != 0 {
		t.Fatal("the approved run did not delete")
	}
	refill()
	_, err = c.Exec(ctx, "EXECUTE wipe")
	id := approvalRequestOf(t, err)
	if rows() != 1 {
		t.Fatal("a second EXECUTE ran on the PREPARE's approval")
	}
	// The reviewer reads what the EXECUTE runs, not only its name.
	if show := approvalsCLI(t, in, "show", id); !strings.Contains(show, "EXECUTE wipe") || !strings.Contains(show, "DELETE FROM t_sqlprep") {
		t.Fatalf("the review request does not show the prepared statement:\n%s", show)
	}
	// DEALLOCATE and a harmless PREPARE of the same name do not clear it.
	if _, err := c.Exec(ctx, "DEALLOCATE wipe"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "PREPARE wipe AS DELETE FROM t_sqlprep"); pgCode(err) != "42501" {
		t.Fatalf("PREPARE again without approval: %v", err)
	}
	if _, err := c.Exec(ctx, "PREPARE wipe AS SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "EXECUTE wipe"); pgCode(err) != "42501" {
		t.Fatalf("EXECUTE of a reused name: %v", err)
	}
	approvalsCLI(t, in, "approve", id)
	if _, err := c.Exec(ctx, "EXECUTE wipe"); err != nil {
		t.Fatalf("EXECUTE on its own approval: %v", err)
	}
}

// TestApprovalAcrossReplicas runs two Airlock processes on one PostgreSQL
// store: a command held by one is approved through the other's API.
func TestApprovalAcrossReplicas(t *testing.T) {
	db := testenv.PostgresDB(t)
	storeDB := testenv.PostgresDB(t)
	store := fmt.Sprintf("store: {driver: postgres, dsn: %q}\n", testenv.PostgresURL(t, storeDB))
	a := startAirlock(t, baseConfig(db, fmt.Sprintf(holdConfig, "5m")+"  replica: replica-a\n"+store, ""))
	b := startAirlock(t, baseConfig(db, fmt.Sprintf(holdConfig, "5m")+"  replica: replica-b\n"+store, ""))
	createTable(t, db, "t_replica")
	h := startHeld(t, a.dsn("dev", devToken, "main", "sslmode=disable"), "DROP TABLE t_replica")
	start := time.Now()
	approvalsCLI(t, b, "approve", h.id)
	if out := h.wait(t); !strings.Contains(out, "DROP TABLE") {
		t.Fatalf("held command on replica A not released by B:\n%s", out)
	}
	t.Logf("released %v after the approval on the other replica", time.Since(start))
}

// TestApprovalWebPage approves a held psql command by clicking in the
// review page in headless Chromium.
func TestApprovalWebPage(t *testing.T) {
	db := testenv.PostgresDB(t)
	in := startAirlock(t, baseConfig(db, fmt.Sprintf(holdConfig, "5m"), ""))
	createTable(t, db, "t_web")
	h := startHeld(t, in.dsn("dev", devToken, "main", "sslmode=disable"), "DROP TABLE t_web")
	ctx := newChromium(t)
	err := chromedp.Do(ctx,
		chromedp.Navigate("http://"+in.admin+"/approvals"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), devToken),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("req-"+h.id)),
		chromedp.Click(chromedp.ID("approve-"+h.id)),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	if out := h.wait(t); !strings.Contains(out, "DROP TABLE") {
		t.Fatalf("held command not released by the page:\n%s", out)
	}
	if tableExists(t, db, "t_web") {
		t.Fatal("approved DROP TABLE did not run")
	}
	// The API agrees.
	req, _ := http.NewRequest("GET", "http://"+in.admin+"/api/approvals/"+h.id, nil)
	req.Header.Set("Authorization", "Bearer "+devToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&got)
	if fmt.Sprint(got) == "" || !strings.Contains(fmt.Sprint(got), "consumed") {
		t.Fatalf("request after approval: %v", got)
	}
}
