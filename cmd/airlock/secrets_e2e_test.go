package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/protocols/testenv"
)

// TestSecretsNeverWritten runs sessions that succeed, fail and get refused,
// then searches everything Airlock wrote (its log at debug level, its
// metrics, every file under its working directory but the configuration)
// for the upstream password and the caller's token.
func TestSecretsNeverWritten(t *testing.T) {
	db := testenv.PostgresDB(t)
	in := startAirlock(t, baseConfig(db, "", ""))
	ctx := context.Background()
	c := pgxConnect(t, in.url("dev", devToken, "main", ""))
	for _, q := range []string{
		"CREATE TABLE s (id int, note text)",
		"INSERT INTO s VALUES (1, 'a')",
		"SELECT * FROM s",
		"SELECT 1/0",
		"SELECT * FROM no_such_table",
	} {
		_, _ = c.Exec(ctx, q)
	}
	_, _ = pgxConnectErr(in.url("dev", "wrong-token-value", "main", ""))
	_, _ = pgxConnectErr(in.url("dev", devToken, "nope", ""))
	c.Close(ctx)
	metrics := in.metrics(t)
	in.stop()

	secrets := []string{upstreamSecret, devToken, "wrong-token-value"}
	check := func(where string, data []byte) {
		for _, s := range secrets {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("%s contains the secret %q", where, s)
			}
		}
	}
	check("the log", []byte(in.Logs()))
	check("/metrics", []byte(metrics))
	files := 0
	err := filepath.WalkDir(in.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Base(p) == "airlock.yaml" {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		check(strings.TrimPrefix(p, in.dir), data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatal("Airlock wrote no files: the search proves nothing")
	}
	t.Logf("searched the log, /metrics and %d files", files)
}
