package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/session/identity"
)

// TestDrainLetsTheStatementFinish: SIGTERM while an INSERT runs. Airlock
// stops accepting and turns unready at once, lets the INSERT finish and
// its client read the outcome, then ends the session with 57P01, closes a
// recording that verifies and holds the outcome, and exits 0.
func TestDrainLetsTheStatementFinish(t *testing.T) {
	db := testenv.PostgresDB(t)
	in := startAirlock(t, baseConfig(db, "shutdown: {drain_timeout: 10s}\n", ""))
	createTable(t, db, "t_drain")
	ctx := context.Background()
	c := pgxConnect(t, in.url("dev", devToken, "main", ""))
	idle := pgxConnect(t, in.url("dev", devToken, "main", ""))
	if _, err := idle.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(ctx, "INSERT INTO t_drain SELECT 1 FROM pg_sleep(1.5)")
		done <- err
	}()
	if !pollUntil(10*time.Second, func() bool { return pgActivity(t, "t_drain SELECT 1 FROM pg_sleep") == 1 }) {
		t.Fatal("the INSERT did not start")
	}
	start := time.Now()
	in.signal(t, syscall.SIGTERM)
	if !pollUntil(2*time.Second, func() bool { code, _ := readyz(t, in, ""); return code == http.StatusServiceUnavailable }) {
		t.Fatal("/readyz stayed ready during the drain")
	}
	unready := time.Since(start)
	if _, body := readyz(t, in, ""); !strings.Contains(body, "draining") {
		t.Errorf("/readyz during the drain: %s", body)
	}
	if conn, err := net.DialTimeout("tcp", in.pgAddr, time.Second); err == nil {
		conn.Close()
		t.Error("the listener still accepts during the drain")
	}
	// The idle session ends at once, with PostgreSQL's shutdown error.
	if _, err := idle.Exec(ctx, "SELECT 1"); err == nil {
		t.Error("an idle session ran a command during the drain")
	}
	if err := <-done; err != nil {
		t.Fatalf("the INSERT in flight failed: %v", err)
	}
	finished := time.Since(start)
	if _, err := c.Exec(ctx, "SELECT 1"); pgCode(err) != "57P01" {
		t.Errorf("the session after its statement: %v, want 57P01", err)
	}
	code, took := in.exited(t, start, 15*time.Second)
	if code != 0 {
		t.Fatalf("exit code %d\n%s", code, in.Logs())
	}
	t.Logf("drain: unready after %v, INSERT finished after %v, exited after %v", unready, finished, took)
	if !tableHasRows(t, db, "t_drain", 1) {
		t.Error("the INSERT did not commit")
	}
	replay := verifyAll(t, in)
	if !strings.Contains(replay, "INSERT 0 1") {
		t.Errorf("the recording lacks the INSERT's outcome:\n%s", replay)
	}
}

// TestDrainCancelsPastTheDrainPeriod: a statement still running when the
// drain period ends is cancelled upstream, its client reads 57014 before
// its session ends, nothing of it commits, and the recording has its
// outcome.
func TestDrainCancelsPastTheDrainPeriod(t *testing.T) {
	db := testenv.PostgresDB(t)
	in := startAirlock(t, baseConfig(db, "shutdown: {drain_timeout: 500ms, cancel_timeout: 5s}\n", ""))
	createTable(t, db, "t_cancelled")
	ctx := context.Background()
	c := pgxConnect(t, in.url("dev", devToken, "main", ""))
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(ctx, "INSERT INTO t_cancelled SELECT 1 FROM pg_sleep(30)")
		done <- err
	}()
	if !pollUntil(10*time.Second, func() bool { return pgActivity(t, "t_cancelled SELECT 1 FROM pg_sleep") == 1 }) {
		t.Fatal("the INSERT did not start")
	}
	code, took := in.terminate(t, 15*time.Second)
	err := <-done
	if pgCode(err) != "57014" {
		t.Fatalf("the statement past the drain: %v, want 57014 (cancelled)", err)
	}
	if code != 0 {
		t.Fatalf("exit code %d\n%s", code, in.Logs())
	}
	t.Logf("drain past its period: exited after %v (drain_timeout 500ms)", took)
	if took > 5*time.Second {
		t.Errorf("the drain took %v", took)
	}
	if n := pgActivity(t, "t_cancelled SELECT 1 FROM pg_sleep"); n != 0 {
		t.Errorf("the statement still runs upstream after Airlock exited (%d)", n)
	}
	if tableHasRows(t, db, "t_cancelled", 1) {
		t.Error("the cancelled INSERT committed")
	}
	replay := verifyAll(t, in)
	if !strings.Contains(replay, "57014") && !strings.Contains(replay, "canceling statement") {
		t.Errorf("the recording lacks the cancelled outcome:\n%s", replay)
	}
}

// TestDrainWithdrawsHeldCommands: a command waiting for approval at
// SIGTERM is withdrawn with a clear error, does not run, and its request
// is cancelled; the drain does not wait for it.
func TestDrainWithdrawsHeldCommands(t *testing.T) {
	db := testenv.PostgresDB(t)
	in := startAirlock(t, baseConfig(db, fmt.Sprintf(holdConfig, "5m")+"shutdown: {drain_timeout: 10s}\n", ""))
	createTable(t, db, "t_held")
	h := startHeld(t, in.dsn("dev", devToken, "main", "sslmode=disable"), "DROP TABLE t_held")
	code, took := in.terminate(t, 15*time.Second)
	out := h.wait(t)
	if code != 0 {
		t.Fatalf("exit code %d\n%s", code, in.Logs())
	}
	if !strings.Contains(out, "Airlock is shutting down") || !strings.Contains(out, "withdrawn") {
		t.Errorf("psql was not told its command was withdrawn:\n%s", out)
	}
	if took > 5*time.Second {
		t.Errorf("the drain waited %v for a held command", took)
	}
	if !tableExists(t, db, "t_held") {
		t.Fatal("the withdrawn DROP TABLE ran")
	}
	replay := verifyAll(t, in)
	if !strings.Contains(replay, "review abandoned: Airlock is shutting down") {
		t.Errorf("the recording does not say why the command did not run:\n%s", replay)
	}
	t.Logf("drain with a held command: exited after %v", took)
}

// TestDrainMySQLAndRedis: the MySQL statement in flight finishes and is
// answered; an idle Redis session ends; both recordings verify.
func TestDrainMySQLAndRedis(t *testing.T) {
	testenv.Need(t, "Redis", testenv.RedisAddr)
	mdb := mariadbDatabase(t)
	in := startAirlock(t, lifeConfig("shutdown: {drain_timeout: 10s}\n",
		myEntry("my", testenv.MariaDBAddr, mdb, "root", "")+rdEntry("rd", testenv.RedisAddr, "", "")))
	my := openDriver(t, func() *mysqlInstance {
		return &mysqlInstance{instance: in, addr: in.addr("mysql")}
	}().driverConfig("dev", devToken, "my"))
	my.SetMaxOpenConns(1)
	rd := redis.NewClient(&redis.Options{Addr: in.addr("redis"), Username: "dev", Password: devToken, Protocol: 2})
	t.Cleanup(func() { rd.Close() })
	ctx := context.Background()
	if err := rd.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := my.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var slept int
	go func() { done <- my.QueryRowContext(ctx, "SELECT SLEEP(1)").Scan(&slept) }()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	in.signal(t, syscall.SIGTERM)
	if err := <-done; err != nil || slept != 0 {
		t.Fatalf("the MySQL statement in flight: %d, %v", slept, err)
	}
	code, took := in.exited(t, start, 15*time.Second)
	if code != 0 {
		t.Fatalf("exit code %d\n%s", code, in.Logs())
	}
	if err := rd.Ping(ctx).Err(); err == nil {
		t.Error("the Redis session outlived the shutdown")
	}
	t.Logf("drain of MySQL and Redis: exited after %v", took)
	if ids := recordingIDs(t, in); len(ids) < 2 {
		t.Fatalf("recordings: %v", ids)
	}
	if replay := verifyAll(t, in); !strings.Contains(replay, "SLEEP(1)") {
		t.Errorf("the MySQL recording lacks the statement:\n%s", replay)
	}
}

// TestReloadOnSIGHUP: a reload puts new identities, a connection's new
// masking and allow list in force for new sessions and for the next
// command of open ones, which stay open; a bad file is rejected with each
// problem logged while the configuration in force keeps serving; a
// listener change is reported as needing a restart.
func TestReloadOnSIGHUP(t *testing.T) {
	db := testenv.PostgresDB(t)
	before := lifeConfig("", pgEntry("main", testenv.PostgresAddr, db))
	in := startAirlock(t, before)
	ctx := context.Background()
	dev := pgxConnect(t, in.url("dev", devToken, "main", ""))
	agent := pgxConnect(t, in.url("agent", "agent-token", "main", ""))
	const probe = "SELECT 'ann@example.com'::text AS email"
	var email string
	if err := dev.QueryRow(ctx, probe).Scan(&email); err != nil || email != "ann@example.com" {
		t.Fatalf("before the reload: %q, %v", email, err)
	}
	after := lifeConfig(`masking:
  columns:
    - {name: email, strategy: redact}
`, strings.Replace(pgEntry("main", testenv.PostgresAddr, db), "allow: [dev, agent]", "allow: [dev, newbie]", 1))
	after = strings.Replace(after, "  - name: ops\n", fmt.Sprintf("  - name: newbie\n    token_sha256: %s\n  - name: ops\n", identity.HashToken("newbie-token")), 1)
	after = strings.Replace(after, "  mysql: 127.0.0.1:0\n", "  mysql: 127.0.0.1:0\n  http: 127.0.0.1:0\n", 1)
	in.rewriteConfig(t, after)
	in.signal(t, syscall.SIGHUP)
	in.waitLog(t, "configuration reloaded", 10*time.Second)
	if err := dev.QueryRow(ctx, probe).Scan(&email); err != nil || email == "ann@example.com" {
		t.Errorf("the open session's next command after the reload: %q, %v; want it masked", email, err)
	}
	if _, err := agent.Exec(ctx, "SELECT 1"); err == nil || !strings.Contains(err.Error(), "configuration reloaded") {
		t.Errorf("a session whose caller may no longer use the connection: %v", err)
	}
	newbie := pgxConnect(t, in.url("newbie", "newbie-token", "main", ""))
	if _, err := newbie.Exec(ctx, "SELECT 1"); err != nil {
		t.Errorf("the identity the reload added: %v", err)
	}
	if !strings.Contains(in.Logs(), "configuration change needs a restart to take effect") || !strings.Contains(in.Logs(), "change=listen") {
		t.Errorf("the listener change was not reported as needing a restart\n%s", in.Logs())
	}

	// A bad file: every problem logged, the configuration in force serves on.
	bad := strings.Replace(after, "level: debug", "level: loud", 1) + "\nshutdown: {drain_timeout: -1s}\n"
	in.rewriteConfig(t, bad)
	in.signal(t, syscall.SIGHUP)
	in.waitLog(t, "configuration reload rejected", 10*time.Second)
	for _, want := range []string{"log.level", "shutdown.drain_timeout"} {
		if !strings.Contains(in.Logs(), want) {
			t.Errorf("the rejected reload's log lacks %q", want)
		}
	}
	if _, err := newbie.Exec(ctx, "SELECT 1"); err != nil {
		t.Errorf("after a rejected reload: %v", err)
	}
	if err := dev.QueryRow(ctx, probe).Scan(&email); err != nil || email == "ann@example.com" {
		t.Errorf("after a rejected reload the masking in force changed: %q, %v", email, err)
	}
	if code, _ := readyz(t, in, ""); code != http.StatusOK {
		t.Errorf("/readyz after reloads: %d", code)
	}
}

// TestReloadThroughTheAdminAPI: POST /admin/reload and `airlock reload`
// need an identity reload.allow names, and report what they did.
func TestReloadThroughTheAdminAPI(t *testing.T) {
	db := testenv.PostgresDB(t)
	cfg := lifeConfig("", pgEntry("main", testenv.PostgresAddr, db))
	in := startAirlock(t, cfg)
	post := func(token string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+in.admin+"/admin/reload", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := post(""); code != http.StatusUnauthorized {
		t.Errorf("without a token: %d", code)
	}
	if code, _ := post("not-a-token"); code != http.StatusUnauthorized {
		t.Errorf("with a bad token: %d", code)
	}
	if code, body := post(devToken); code != http.StatusForbidden {
		t.Errorf("dev, not a reloader: %d %s", code, body)
	}
	in.rewriteConfig(t, strings.Replace(cfg, "allow: [dev, agent]", "allow: [dev]", 1))
	if code, body := post(opsToken); code != http.StatusOK || !strings.Contains(body, `"applied":true`) || !strings.Contains(body, "connection main changed") {
		t.Errorf("ops: %d %s", code, body)
	}
	reload := func() (string, int) {
		cmd := exec.Command(airlockBin(t), "reload")
		cmd.Env = append(os.Environ(), "AIRLOCK_TOKEN="+opsToken, "AIRLOCK_SERVER=http://"+in.admin)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		return string(out), 0
	}
	if out, code := reload(); code != 0 || !strings.Contains(out, "reloaded:") {
		t.Errorf("airlock reload (%d): %s", code, out)
	}
	in.rewriteConfig(t, cfg+"\nconnections_typo: []\n")
	if code, body := post(opsToken); code != http.StatusUnprocessableEntity || !strings.Contains(body, "connections_typo") {
		t.Errorf("a bad file: %d %s", code, body)
	}
	if out, code := reload(); code != 1 || !strings.Contains(out, "rejected") || !strings.Contains(out, "connections_typo") {
		t.Errorf("airlock reload of a bad file (%d): %s", code, out)
	}
	if !strings.Contains(in.metrics(t), `airlock_config_reloads_total{outcome="rejected"} 2`) {
		t.Error("rejected reloads not counted")
	}
}

// TestToolsWithoutTheRecordingKey: the commands that read recordings or
// check a configuration work where the recording key is not set, and say
// what they could not verify.
func TestToolsWithoutTheRecordingKey(t *testing.T) {
	db := testenv.PostgresDB(t)
	const keyEnv = "AIRLOCK_TEST_RECORDING_KEY"
	cfg := baseConfig(db, "recording: {hmac_key_env: "+keyEnv+"}\n", "")
	in := startAirlock(t, cfg, keyEnv+"=0123456789abcdef0123456789abcdef-test")
	c := pgxConnect(t, in.url("dev", devToken, "main", ""))
	if _, err := c.Exec(context.Background(), "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	c.Close(context.Background())
	in.stop()
	out, code := airlockCmd(t, in, "check-config", "airlock.yaml")
	if code != 0 || !strings.Contains(out, "not checked") || !strings.Contains(out, keyEnv) {
		t.Errorf("check-config without the key (%d):\n%s", code, out)
	}
	out, code = airlockCmd(t, in, "sessions", "list")
	if code != 0 || !strings.Contains(out, "dev") || !strings.Contains(out, keyEnv) {
		t.Errorf("sessions list without the key (%d):\n%s", code, out)
	}
	ids := recordingIDs(t, in)
	if len(ids) != 1 {
		t.Fatalf("recordings: %v", ids)
	}
	out, code = airlockCmd(t, in, "verify", ids[0])
	t.Logf("verify without the key (%d): %s", code, out)
	if !strings.Contains(out, "signatures not checked") {
		t.Errorf("verify without the key (%d) does not say the signatures went unchecked:\n%s", code, out)
	}
}

func tableHasRows(t *testing.T, db, table string, n int) bool {
	t.Helper()
	c := pgxConnect(t, testenv.PostgresURL(t, db))
	var got int
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&got); err != nil {
		t.Fatal(err)
	}
	return got == n
}
