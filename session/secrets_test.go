package session

import (
	"bytes"
	"log/slog"
	"os"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
)

// TestSecretsNeverReachTheFile records commands whose original text and
// arguments hold secrets, with the redacted text the Pipeline passes, and
// searches the file raw, decompressed, replayed and logged.
func TestSecretsNeverReachTheFile(t *testing.T) {
	const (
		pgSecret    = "hunter2-pg-Secret-7f3a"
		redisSecret = "tok-redis-Secret-99c1"
		urlSecret   = "sk_live_url-Secret-c0ffee"
	)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := newFactory(t, Config{Rows: RowsAll}, Options{Key: testKey, Log: log})
	rec := open(t, f, "secrets")
	cmds := []struct {
		cmd      protocols.Command
		redacted string
	}{
		{protocols.Command{Protocol: protocols.Postgres, Kind: "query", Text: "ALTER USER app PASSWORD '" + pgSecret + "'"}, "ALTER USER app PASSWORD '***'"},
		{protocols.Command{Protocol: protocols.Redis, Kind: "command", Text: "AUTH app " + redisSecret, Args: []string{"AUTH", "app", redisSecret}}, "AUTH app ***"},
		{protocols.Command{Protocol: protocols.HTTP, Kind: "request", Text: "GET /v1/charges?key=" + urlSecret}, "GET /v1/charges?key=***"},
	}
	for _, c := range cmds {
		must(t, rec.Command(&c.cmd, c.redacted))
		must(t, rec.Decision(protocols.Decision{Action: protocols.Allow}))
		must(t, rec.Result(protocols.Result{Tag: "OK"}))
	}
	must(t, rec.Close("done"))
	path := recordingPath(t, f, "secrets")

	raw, err := os.ReadFile(path)
	must(t, err)
	var plain []byte
	for _, blk := range parseRaw(t, raw).blocks {
		for _, fr := range blk {
			plain = append(plain, fr.body...)
		}
	}
	var text, js bytes.Buffer
	_, err = Replay(&text, bytes.NewReader(raw), ReplayOptions{Key: testKey})
	must(t, err)
	_, err = Replay(&js, bytes.NewReader(raw), ReplayOptions{Key: testKey, JSON: true})
	must(t, err)

	if !bytes.Contains(plain, []byte("AUTH app ***")) || !bytes.Contains(text.Bytes(), []byte("PASSWORD '***'")) {
		t.Fatal("the redacted commands are missing: the search below would prove nothing")
	}
	for _, secret := range []string{pgSecret, redisSecret, urlSecret} {
		for name, b := range map[string][]byte{"raw file": raw, "decompressed frames": plain, "replay": text.Bytes(), "replay --json": js.Bytes(), "log": logs.Bytes()} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s contains the secret %q", name, secret)
			}
		}
	}
	if bytes.Contains(raw, testKey) || bytes.Contains(plain, testKey) {
		t.Error("the recording contains the HMAC key")
	}
}
