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

// TestCredentialsNeverReachTheFile passes an HTTP exchange whose headers
// and query carry credentials, and a command whose payload holds secrets in
// its arguments, body and query, as an engine that forgot to remove them
// would: none may reach the file raw, decompressed, replayed or logged.
func TestCredentialsNeverReachTheFile(t *testing.T) {
	secrets := map[string]string{
		"Authorization":        "Bearer eyJ-authorization-Secret-1",
		"Proxy-Authorization":  "Basic proxy-Secret-2",
		"Cookie":               "sid=cookie-Secret-3",
		"X-Api-Key":            "api-key-Secret-4",
		"X-Auth-Token":         "auth-token-Secret-5",
		"X-Amz-Security-Token": "amz-token-Secret-6",
		"X-Client-Secret":      "client-Secret-7",
		"X-DB-Password":        "db-password-Secret-8",
		"Apikey":               "apikey-Secret-9",
		"Set-Cookie":           "sid=set-cookie-Secret-10; HttpOnly",
	}
	const (
		querySecret = "query-Secret-11"
		argsSecret  = "arguments-Secret-12"
		bodySecret  = "body-Secret-13"
	)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := newFactory(t, Config{Rows: RowsAll}, Options{Key: testKey, Log: log})
	rec, err := f.Open(httpInfo("credentials"))
	must(t, err)
	var request, response []protocols.Header
	for _, name := range []string{"Accept", "Authorization", "Proxy-Authorization", "Cookie", "X-Api-Key", "X-Auth-Token", "X-Amz-Security-Token", "X-Client-Secret", "X-DB-Password", "Apikey"} {
		request = append(request, protocols.Header{Name: name, Value: orDefault(secrets[name], "application/json")})
	}
	response = append(response, protocols.Header{Name: "Set-Cookie", Value: secrets["Set-Cookie"]}, protocols.Header{Name: "Content-Type", Value: "text/plain"})
	path := "/v1/charges?api_key=" + querySecret
	cmd := &protocols.Command{Protocol: protocols.HTTP, Kind: "request", Text: "POST " + path,
		Payload: &protocols.Payload{Tool: "charge", Arguments: []byte(`{"card":"` + argsSecret + `"}`), Method: "POST", Path: path, Body: []byte(bodySecret)}}
	must(t, rec.Command(cmd, "POST /v1/charges?api_key=***"))
	must(t, rec.Decision(protocols.Decision{Action: protocols.Allow}))
	must(t, rec.Exchange(protocols.Exchange{Method: "POST", Path: path, Status: 200, RequestHeaders: request, ResponseHeaders: response,
		RequestBody: []byte(`{"amount": 100}`), ResponseBody: []byte("ok")}))
	must(t, rec.Close("done"))

	raw, err := os.ReadFile(recordingPath(t, f, "credentials"))
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

	for _, want := range []string{"> Authorization: [removed]", "< Set-Cookie: [removed]", "> Accept: application/json",
		"POST /v1/charges?[removed] → 200", "payload: tool charge, POST /v1/charges?[removed]", `> body, 15 bytes: {"amount": 100}`} {
		if !strings.Contains(text.String(), want) {
			t.Fatalf("replay lacks %q: the search below would prove nothing\n%s", want, text.String())
		}
	}
	all := []string{querySecret, argsSecret, bodySecret}
	for _, s := range secrets {
		all = append(all, s, strings.SplitN(s, "-", 2)[1]) // the value, and its tail past any scheme
	}
	for _, secret := range all {
		for name, b := range map[string][]byte{"raw file": raw, "decompressed frames": plain, "replay": text.Bytes(), "replay --json": js.Bytes(), "log": logs.Bytes()} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s contains the secret %q", name, secret)
			}
		}
	}
}

func orDefault(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}
