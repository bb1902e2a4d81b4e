package postgres

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/session"
)

// testAuth accepts fixed name/token pairs; the engine's tests exercise the
// wire, the real authenticator is tested in session/identity and end to end
// in cmd/airlock.
type testAuth map[string]string

func (a testAuth) Authenticate(_ context.Context, name, secret string) (protocols.Identity, error) {
	if tok, ok := a[name]; ok && tok == secret {
		return protocols.Identity{Name: name, Groups: []string{"testers"}, Method: "token"}, nil
	}
	return protocols.Identity{}, protocols.ErrAuthFailed
}

// keywordClassifier marks statements by a marker word so the engine's
// refusal paths can be driven precisely; sqlrisk's parse-tree classifier
// is wired in end to end in cmd/airlock.
type keywordClassifier struct{}

func (keywordClassifier) Classify(cmd *protocols.Command) *protocols.Classification {
	t := strings.ToLower(cmd.Text)
	switch {
	case strings.Contains(t, "/*deny*/"):
		return &protocols.Classification{Risk: protocols.RiskCritical, Rules: []string{"test.deny"}, Redacted: cmd.Text}
	case strings.Contains(t, "/*review*/"):
		return &protocols.Classification{Risk: protocols.RiskHigh, Rules: []string{"test.review"}, Redacted: cmd.Text}
	}
	return &protocols.Classification{Risk: protocols.RiskNone, Redacted: cmd.Text}
}

type riskPolicy struct{}

func (riskPolicy) Decide(_ protocols.Identity, c *protocols.Classification) protocols.Decision {
	d := protocols.Decision{Action: protocols.Allow, Risk: c.Risk, Rules: c.Rules}
	switch c.Risk {
	case protocols.RiskCritical:
		d.Action, d.Reason = protocols.Deny, "denied by policy: "+strings.Join(c.Rules, ", ")
	case protocols.RiskHigh:
		d.Action, d.Reason = protocols.Review, "approval required: "+strings.Join(c.Rules, ", ")
	}
	return d
}

// memRecorder keeps what the engine records, for assertions.
type memRecorder struct {
	mu     sync.Mutex
	events []string
	closed string
}

func (r *memRecorder) add(s string) error {
	r.mu.Lock()
	r.events = append(r.events, s)
	r.mu.Unlock()
	return nil
}
func (r *memRecorder) Command(c *protocols.Command, red string) error {
	return r.add("command " + c.Kind + ": " + red)
}

// commands returns the recorded commands, in order.
func (r *memRecorder) commands() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if c, ok := strings.CutPrefix(e, "command "); ok {
			out = append(out, c)
		}
	}
	return out
}
func (r *memRecorder) Decision(d protocols.Decision) error {
	return r.add("decision " + string(d.Action))
}
func (r *memRecorder) Columns(c []protocols.Column) error { return r.add("columns") }
func (r *memRecorder) Parameters(portal string, ps []protocols.Param) error {
	var b strings.Builder
	fmt.Fprintf(&b, "params %q:", portal)
	for _, p := range ps {
		switch {
		case p.Withheld:
			fmt.Fprintf(&b, " withheld(%d)", p.Omitted)
		case p.Value == nil:
			b.WriteString(" NULL")
		case p.Binary:
			fmt.Fprintf(&b, " %x", p.Value)
			if p.Native != 0 {
				fmt.Fprintf(&b, "(%d)", p.Native)
			}
		default:
			fmt.Fprintf(&b, " %q", p.Value)
		}
	}
	return r.add(b.String())
}
func (r *memRecorder) Row(v [][]byte) error              { return nil }
func (r *memRecorder) Reply(protocols.Reply) error       { return r.add("reply") }
func (r *memRecorder) Exchange(protocols.Exchange) error { return r.add("exchange") }
func (r *memRecorder) Result(res protocols.Result) error {
	if res.Error != "" {
		return r.add("result " + res.Code + " " + res.Error)
	}
	return r.add("result " + res.Tag + res.Code)
}
func (r *memRecorder) Close(reason string) error {
	r.mu.Lock()
	r.closed = reason
	r.mu.Unlock()
	return nil
}

type memRecorders struct {
	mu   sync.Mutex
	recs []*memRecorder
	fail bool
}

func (f *memRecorders) Open(protocols.SessionInfo) (protocols.Recorder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return nil, os.ErrPermission
	}
	r := &memRecorder{}
	f.recs = append(f.recs, r)
	return r, nil
}

// harness is a running engine on a loopback port in front of the local
// PostgreSQL.
type harness struct {
	addr    string
	db      string
	engine  *Engine
	conns   map[string]*protocols.Connection // the gateway's, for tests that add one
	recs    *memRecorders
	cancel  context.CancelFunc
	done    chan struct{}
	tlsConf *tls.Config
}

// Options is what a test may change in the harness before it starts: the
// engine's settings and what the gateway it serves through is given.
type Options struct {
	TLS              *tls.Config
	RecordParameters bool
	Pipeline         *testPipeline
	Auth             protocols.Authenticator
	Connections      map[string]*protocols.Connection
	Recorders        protocols.RecorderFactory
	Metrics          *session.Metrics
	Log              *slog.Logger
	MaxMessageSize   int
	StartupTimeout   time.Duration
	Relay            bool
	PoolMaxIdle      int
	Active           func() (done func())
}

// testPipeline is what decides commands: the classifier and the approver.
type testPipeline struct {
	Classifier protocols.Classifier
	Approver   protocols.Approver
}

type harnessOpt func(*Options)

func startHarness(t *testing.T, opts ...harnessOpt) *harness {
	return startHarnessOn(t, "127.0.0.1:0", opts...)
}

func startHarnessOn(t *testing.T, addr string, opts ...harnessOpt) *harness {
	t.Helper()
	db := testenv.PostgresDB(t)
	h := &harness{db: db, recs: &memRecorders{}, done: make(chan struct{})}
	h.tlsConf = selfSigned(t)
	o := Options{
		TLS:      h.tlsConf,
		Pipeline: &testPipeline{Classifier: keywordClassifier{}},
		Auth:     testAuth{"alice": "alice-token", "bob": "bob-token"},
		Connections: map[string]*protocols.Connection{
			"main": {
				Name: "main", Protocol: protocols.Postgres, Allow: protocols.Principals{"alice"},
				Upstream: &Upstream{Address: testenv.PostgresAddr, Database: db, User: "postgres",
					Password: "never-used-upstream-secret", TLS: UpstreamTLS{Mode: "disable"}},
				Policy: riskPolicy{},
			},
			"down": {
				Name: "down", Protocol: protocols.Postgres, Allow: protocols.Principals{"*"},
				Upstream: &Upstream{Address: "127.0.0.1:1", Database: "x", User: "postgres",
					Password: "never-used-upstream-secret", TLS: UpstreamTLS{Mode: "disable"}},
			},
		},
		Recorders:      h.recs,
		Log:            slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		MaxMessageSize: 1 << 20,
	}
	for _, f := range opts {
		f(&o)
	}
	h.engine, h.conns = New(), o.Connections
	set := &h.engine.set
	set.MaxMessageSize = protocols.ByteSize(o.MaxMessageSize)
	set.Pool.MaxIdle = &o.PoolMaxIdle
	if o.StartupTimeout > 0 {
		set.StartupTimeout = o.StartupTimeout
	}
	if o.Relay {
		set.Mode = "relay"
	}
	gw, err := session.New(session.Options{Auth: o.Auth, Connections: o.Connections, Classifier: o.Pipeline.Classifier,
		Approver: o.Pipeline.Approver, Recorders: o.Recorders, Metrics: o.Metrics, Log: o.Log, Active: o.Active})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	deps := engine.Deps{Gateway: gw, TLS: o.TLS, Log: o.Log, RecordParameters: o.RecordParameters}
	go func() {
		defer close(h.done)
		_ = h.engine.Serve(ctx, ln, deps)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(10 * time.Second):
			t.Error("engine did not stop")
		}
	})
	return h
}

func (h *harness) url(user, token, conn string, extra string) string {
	host, port, _ := net.SplitHostPort(h.addr)
	u := "postgres://" + user + ":" + token + "@" + host + ":" + port + "/" + conn + "?sslmode=disable"
	if extra != "" {
		u += "&" + extra
	}
	return u
}

// alice connects as alice to the connection main.
func (h *harness) alice(t *testing.T) *pgconn.PgConn {
	t.Helper()
	c, err := pgconn.Connect(context.Background(), h.url("alice", "alice-token", "main", ""))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// lastRecording is the recording of the session opened last.
func (h *harness) lastRecording() *memRecorder {
	h.recs.mu.Lock()
	defer h.recs.mu.Unlock()
	return h.recs.recs[len(h.recs.recs)-1]
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func selfSigned(t testing.TB) *tls.Config {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "airlock-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
}
