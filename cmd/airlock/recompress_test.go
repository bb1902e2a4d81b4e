package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session/index"
	"github.com/airlock-gw/airlock/session/recording"
	"github.com/airlock-gw/airlock/session/sqldb"
)

// TestSessionsRecompress records two sessions with s2 through a factory
// registered in the configured session index, ends one, and runs `airlock
// sessions recompress` over the directory: the ended recording is rewritten
// with zstd, still verifies with the key and has its new size in the
// index; the one still recording is left alone, byte for byte.
func TestSessionsRecompress(t *testing.T) {
	dir := t.TempDir()
	recDir := filepath.Join(dir, "recordings")
	const keyVar = "AIRLOCK_TEST_RECOMPRESS_KEY"
	key := "recompress-test-key-0123456789abcdef-0123"
	t.Setenv(keyVar, key)
	cfgPath := filepath.Join(dir, "airlock.yaml")
	cfg := fmt.Sprintf(`listen: {postgres: 127.0.0.1:0}
identities:
  - {name: dev, groups: [dev], token_sha256: c91cbbedf8c712e8e2b7517ddeca8fe4fde839ebd8339e0b2001363002b37712}
store: {driver: sqlite, dsn: %s}
recording: {dir: %s, hmac_key_env: %s}
connections:
  - {name: pg, protocol: postgres, upstream: {address: 127.0.0.1:5432, user: postgres, database: test}, allow: [dev]}
`, filepath.Join(dir, "airlock.db"), recDir, keyVar)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, err := sqldb.Open(ctx, sqldb.Config{Driver: "sqlite", DSN: protocols.Secret(filepath.Join(dir, "airlock.db"))})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	idx, err := index.Open(ctx, db.DB, string(db.Dialect), index.Options{Dir: recDir})
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	fac, err := recording.NewFactory(recording.Config{Dir: recDir, Rows: recording.RowsAll, Sync: recording.SyncSessionEnd},
		recording.Options{Key: []byte(key), Index: idx, Node: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	defer fac.Close()
	record := func(id string) protocols.Recorder {
		rec, err := fac.Open(protocols.SessionInfo{ID: id, Protocol: protocols.Postgres, Connection: "pg", Start: time.Now(),
			Identity: protocols.Identity{Name: "dev"}})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2000 {
			if err := rec.Row([][]byte{fmt.Appendf(nil, "%d", i), []byte("a row much like the others, as rows are")}); err != nil {
				t.Fatal(err)
			}
		}
		return rec
	}
	ended, running := record("rc-ended"), record("rc-running")
	if err := ended.Close("client closed"); err != nil {
		t.Fatal(err)
	}
	defer running.Close("test over")
	runningPath, _ := fac.Path("rc-running")
	runningBefore, _ := os.ReadFile(runningPath)

	var out, errOut bytes.Buffer
	if code := runSessions([]string{"recompress", "--config", cfgPath, recDir}, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, &out, &errOut)
	}
	if !strings.Contains(out.String(), "rc-running.alrec: left alone: session rc-running is still recording") ||
		!strings.Contains(out.String(), "s2 to zstd") || !strings.Contains(out.String(), "re-sealed with the key") {
		t.Fatalf("stdout: %s", &out)
	}
	endedPath, _ := fac.Path("rc-ended")
	h, err := recording.ReadHeader(endedPath)
	if err != nil || h.Compression != "" || h.Version != 1 { // a zstd PostgreSQL recording is version 1
		t.Fatalf("header %+v %v", h, err)
	}
	out.Reset()
	if code := runVerify([]string{"--config", cfgPath, "rc-ended"}, nil, &out, &errOut); code != 0 || !strings.Contains(out.String(), "intact") ||
		!strings.Contains(out.String(), "signatures verified") {
		t.Fatalf("verify: exit %d: %s %s", code, &out, &errOut)
	}
	st, _ := os.Stat(endedPath)
	s, err := idx.Get(ctx, "rc-ended")
	if err != nil || s.Bytes != st.Size() {
		t.Fatalf("index has %d bytes (%v), file %d", s.Bytes, err, st.Size())
	}
	out.Reset()
	if code := runSessions([]string{"recompress", "--config", cfgPath, "rc-ended"}, nil, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "rc-ended.alrec: already zstd") {
		t.Fatalf("second run: exit %d: %s %s", code, &out, &errOut)
	}
	if now, _ := os.ReadFile(runningPath); !bytes.Equal(now, runningBefore) {
		t.Fatal("the running session's recording was changed")
	}
}
