package recording

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session"
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

// redactingClassifier stands in for sqlrisk: it replaces the password
// literal, as the real classifier does, and allows everything.
type redactingClassifier struct{ secret string }

func (c redactingClassifier) Classify(cmd *protocols.Command) *protocols.Classification {
	return &protocols.Classification{Risk: protocols.RiskHigh, Rules: []string{"role.password"},
		Redacted: strings.ReplaceAll(cmd.Text, c.secret, "***")}
}

// allowAll authenticates any caller as itself.
type allowAll struct{}

func (allowAll) Authenticate(_ context.Context, name, _ string) (protocols.Identity, error) {
	return protocols.Identity{Name: name}, nil
}

// TestPipelineRecordsTheRedactedText drives the real session flow, so the
// text recorded is exactly what it passes.
func TestPipelineRecordsTheRedactedText(t *testing.T) {
	const secret = "Pipeline-Secret-31337"
	f := newFactory(t, Config{}, Options{})
	g, err := session.New(session.Options{Auth: allowAll{}, Classifier: redactingClassifier{secret}, Recorders: f,
		Connections: map[string]*protocols.Connection{"prod-pg": {Name: "prod-pg", Protocol: protocols.Postgres, Allow: protocols.Principals{"*"}}}})
	must(t, err)
	s, err := g.Admit(context.Background(), session.Caller{Protocol: protocols.Postgres, User: "alice", Connection: "prod-pg", Local: true})
	must(t, err)
	must(t, s.Start())
	cmd := &protocols.Command{Protocol: protocols.Postgres, Kind: "query", Text: "CREATE ROLE x PASSWORD '" + secret + "'"}
	dec, err := s.Check(context.Background(), cmd)
	must(t, err)
	if dec.Action != protocols.Allow {
		t.Fatalf("decision %+v", dec)
	}
	s.Close("done")
	res := readFile(t, recordingPath(t, f, s.Info.ID), nil)
	if res.frames[0].Command.Text != "CREATE ROLE x PASSWORD '***'" || res.frames[1].Decision.Rules[0] != "role.password" {
		t.Errorf("recorded %+v, %+v", res.frames[0].Command, res.frames[1].Decision)
	}
	raw, err := os.ReadFile(recordingPath(t, f, s.Info.ID))
	must(t, err)
	if bytes.Contains(raw, []byte(secret)) {
		t.Error("the file contains the secret")
	}
}
