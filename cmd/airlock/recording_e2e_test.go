package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-gw/airlock/protocols/testenv"
)

// airlockCmd runs an airlock subcommand in the instance's directory.
func airlockCmd(t *testing.T, in *instance, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(airlockBin(t), args...)
	cmd.Dir = in.dir
	cmd.Env = append(os.Environ(), "TEST_UPSTREAM_PASSWORD="+upstreamSecret)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func recordings(t *testing.T, in *instance) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(in.dir, "data", "recordings", "*"))
	return files
}

// TestRecordingReplayVerify runs a psql session through Airlock, then lists,
// replays and verifies its recording, and checks that tampering is caught.
func TestRecordingReplayVerify(t *testing.T) {
	needPsql(t)
	db := testenv.PostgresDB(t)
	in := startAirlock(t, baseConfig(db, "policy:\n  rules: {schema.drop: deny, privilege.role: allow}\n", ""))
	dsn := in.dsn("dev", devToken, "main", "sslmode=disable")
	out, _ := psql(t, dsn, "", "-v", "ON_ERROR_STOP=0",
		"-c", "CREATE TABLE audit_me (id int, who text)",
		"-c", "INSERT INTO audit_me VALUES (1, 'first'), (2, 'second')",
		"-c", "SELECT * FROM audit_me ORDER BY id",
		"-c", "DROP TABLE audit_me",
		"-c", "CREATE ROLE airlock_rec_role PASSWORD 'role-Secret-77'",
		"-c", "DROP ROLE airlock_rec_role")
	if !strings.Contains(out, "second") {
		t.Fatalf("psql:\n%s", out)
	}
	in.stop() // close every recording

	list, code := airlockCmd(t, in, "sessions", "list", "--identity", "dev")
	if code != 0 || !strings.Contains(list, "dev") || !strings.Contains(list, "main") {
		t.Fatalf("sessions list (%d):\n%s", code, list)
	}
	files := recordings(t, in)
	if len(files) != 1 {
		t.Fatalf("want one recording, got %v", files)
	}
	id := strings.TrimSuffix(filepath.Base(files[0]), filepath.Ext(files[0]))
	if !strings.Contains(list, id) {
		t.Fatalf("session %s not listed:\n%s", id, list)
	}
	replay, code := airlockCmd(t, in, "replay", id)
	if code != 0 {
		t.Fatalf("replay exit %d:\n%s", code, replay)
	}
	for _, want := range []string{"identity    dev", "INSERT INTO audit_me", "second", "DENY", "schema.drop",
		"SELECT 2", "CREATE ROLE airlock_rec_role PASSWORD"} {
		if !strings.Contains(replay, want) {
			t.Errorf("replay lacks %q:\n%s", want, replay)
		}
	}
	if strings.Contains(replay, "role-Secret-77") {
		t.Fatal("a password literal reached the recording")
	}
	asJSON, code := airlockCmd(t, in, "replay", "--json", id)
	if code != 0 || !strings.Contains(asJSON, `"audit_me"`) && !strings.Contains(asJSON, "audit_me") {
		t.Fatalf("replay --json (%d):\n%s", code, asJSON)
	}
	if v, code := airlockCmd(t, in, "verify", files[0]); code != 0 || !strings.Contains(v, "intact") {
		t.Fatalf("verify of an untouched recording (%d): %s", code, v)
	}
	// Flip one byte in the middle: verify names the damage and fails.
	data, _ := os.ReadFile(files[0])
	data[len(data)/2] ^= 0x40
	tampered := filepath.Join(in.dir, "tampered.alrec")
	_ = os.WriteFile(tampered, data, 0o600)
	v, code := airlockCmd(t, in, "verify", tampered)
	if code == 0 || !strings.Contains(v, "altered") {
		t.Fatalf("verify of a tampered recording (%d): %s", code, v)
	}
	// Cut it short: unfinished, also a failure.
	_ = os.WriteFile(tampered, data[:len(data)*2/3], 0o600)
	if v, code := airlockCmd(t, in, "verify", tampered); code == 0 {
		t.Fatalf("verify of a truncated recording passed: %s", v)
	}
}

// TestRecordingPreparedRuns: a replay shows each run of a prepared
// statement and, with recording.parameters on, the values it was given.
func TestRecordingPreparedRuns(t *testing.T) {
	db := testenv.PostgresDB(t)
	in := startAirlock(t, baseConfig(db, "recording:\n  parameters: true\n", ""))
	ctx := context.Background()
	c := pgxConnect(t, in.url("dev", devToken, "main", ""))
	for _, id := range []int{41, 42} {
		var got int
		if err := c.QueryRow(ctx, "SELECT $1::int + 1", id).Scan(&got); err != nil || got != id+1 {
			t.Fatalf("query: %v %d", err, got)
		}
	}
	_ = c.Close(ctx)
	in.stop()
	files := recordings(t, in)
	if len(files) != 1 {
		t.Fatalf("want one recording, got %v", files)
	}
	replay, code := airlockCmd(t, in, "replay", files[0])
	if code != 0 {
		t.Fatalf("replay exit %d:\n%s", code, replay)
	}
	if n := strings.Count(replay, "execute   SELECT $1::int + 1"); n != 2 {
		t.Errorf("replay shows %d runs of the prepared statement, want 2:\n%s", n, replay)
	}
	// pgx sends the int in binary (41 and 42), typed by its Describe of the
	// statement, and receives the sums in binary too; the replay shows both
	// as text.
	for _, want := range []string{`$1 = '41'`, `$1 = '42'`} {
		if !strings.Contains(replay, want) {
			t.Errorf("replay lacks %q:\n%s", want, replay)
		}
	}
	cells := map[string]bool{}
	for _, l := range strings.Split(replay, "\n") {
		cells[strings.TrimSpace(l)] = true
	}
	if !cells["42"] || !cells["43"] {
		t.Errorf("replay does not show the binary results as 42 and 43:\n%s", replay)
	}
}

// TestRecordingUnavailableRefusesSessions points the recording directory
// at a path that cannot be created: Airlock will not start unrecorded; and
// when the directory breaks after start, new sessions are refused.
func TestRecordingUnavailableRefusesSessions(t *testing.T) {
	db := testenv.PostgresDB(t)
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	_ = os.WriteFile(blocker, []byte("not a directory"), 0o600)
	in := startAirlock(t, baseConfig(db, "recording: {dir: "+filepath.Join(dir, "rec")+"}\n", ""))
	ctx := context.Background()
	c := pgxConnect(t, in.url("dev", devToken, "main", ""))
	// Break the directory under the running process.
	if err := os.RemoveAll(filepath.Join(dir, "rec")); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(dir, "rec"), []byte("now a file"), 0o600)
	_, err := pgx.Connect(ctx, in.url("dev", devToken, "main", ""))
	if pgCode(err) != "58030" || !strings.Contains(err.Error(), "recording") {
		t.Fatalf("want 58030 refusing an unrecorded session, got %v", err)
	}
	// The session that was already open ends cleanly or goes on; it never
	// runs a command unrecorded (its file stays open).
	var v int
	if err := c.QueryRow(ctx, "SELECT 1").Scan(&v); err != nil && pgCode(err) != "58030" {
		t.Fatalf("open session: %v", err)
	}
	if !strings.Contains(in.metrics(t), "airlock_recording_write_errors_total") {
		t.Error("no recording error metric")
	}
}
