package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/airlock-gw/airlock/protocols"
)

// tokens authenticates fixed name/token pairs.
type tokens map[string]string

func (a tokens) Authenticate(_ context.Context, name, secret string) (protocols.Identity, error) {
	if tok, ok := a[name]; ok && tok == secret {
		return protocols.Identity{Name: name, Groups: []string{"testers"}, Method: "token"}, nil
	}
	return protocols.Identity{}, protocols.ErrAuthFailed
}

// AuthenticateProof implements ProofAuthenticator: the "hash" of a token is
// its bytes, zero-padded.
func (a tokens) AuthenticateProof(name string, verify func([32]byte) bool) (protocols.Identity, error) {
	var h [32]byte
	copy(h[:], a[name])
	if _, ok := a[name]; ok && verify(h) {
		return protocols.Identity{Name: name, Groups: []string{"testers"}, Method: "token"}, nil
	}
	return protocols.Identity{}, protocols.ErrAuthFailed
}

// proves returns a Caller.Proof of knowing token (see tokens.AuthenticateProof).
func proves(token string) func([32]byte) bool {
	return func(h [32]byte) bool {
		var want [32]byte
		copy(want[:], token)
		return h == want
	}
}

// markers classifies by a marker word: /*deny*/ is critical, /*review*/
// high, anything else a read.
type markers struct{}

func (markers) Classify(cmd *protocols.Command) *protocols.Classification {
	t := strings.ToLower(cmd.Text)
	cls := &protocols.Classification{Redacted: strings.ReplaceAll(cmd.Text, "s3cret", "***")}
	switch {
	case strings.Contains(t, "/*deny*/"):
		cls.Risk, cls.Rules = protocols.RiskCritical, []string{"test.deny"}
	case strings.Contains(t, "/*review*/"):
		cls.Risk, cls.Rules = protocols.RiskHigh, []string{"test.review"}
	}
	if name, ok := strings.CutPrefix(t, "prepare "); ok {
		cls.Prepares = []string{strings.Fields(name)[0]}
	}
	if name, ok := strings.CutPrefix(t, "execute "); ok {
		cls.Executes = []string{strings.Fields(name)[0]}
	}
	return cls
}

// byRisk denies critical and reviews high risk.
type byRisk struct{}

func (byRisk) Decide(_ protocols.Identity, c *protocols.Classification) protocols.Decision {
	d := protocols.Decision{Action: protocols.Allow, Risk: c.Risk, Rules: c.Rules}
	switch c.Risk {
	case protocols.RiskCritical:
		d.Action, d.Reason = protocols.Deny, "denied by policy"
	case protocols.RiskHigh:
		d.Action, d.Reason = protocols.Review, "approval required"
	}
	return d
}

// approver answers reviews as the test says: decide returns the verdict
// (hold mode: notify first, then wait for decide or the context).
type approver struct {
	hold     bool
	decide   chan protocols.Action
	held     chan struct{} // one value per hold, after notify
	requests []protocols.ReviewRequest
	mu       sync.Mutex
}

func newApprover(hold bool) *approver {
	return &approver{hold: hold, decide: make(chan protocols.Action, 1), held: make(chan struct{}, 8)}
}

func (a *approver) Review(ctx context.Context, req protocols.ReviewRequest, notify func(string)) (protocols.Decision, error) {
	a.mu.Lock()
	a.requests = append(a.requests, req)
	n := len(a.requests)
	a.mu.Unlock()
	dec := req.Decision
	dec.ApprovalID = fmt.Sprintf("req-%d", n)
	if !a.hold {
		dec.Action = protocols.Deny
		dec.Reason = "approval required: retry once approved"
		return dec, nil
	}
	notify("approval required: request " + dec.ApprovalID)
	a.held <- struct{}{}
	select {
	case act := <-a.decide:
		dec.Action = act
		return dec, nil
	case <-ctx.Done():
		return dec, ctx.Err()
	}
}

func (a *approver) last() protocols.ReviewRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.requests[len(a.requests)-1]
}

// log is an ordered list of what recorders and sinks saw.
type log struct {
	mu     sync.Mutex
	events []string
}

func (l *log) add(format string, args ...any) {
	l.mu.Lock()
	l.events = append(l.events, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *log) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events...)
}

// recorder writes to a log; failOn makes the named frame fail.
type recorder struct {
	log    *log
	failOn string
	closed string
}

var errDiskFull = errors.New("no space left on device")

func (r *recorder) rec(kind, format string, args ...any) error {
	if kind == r.failOn {
		return errDiskFull
	}
	r.log.add(kind+" "+format, args...)
	return nil
}

func (r *recorder) Command(c *protocols.Command, text string) error {
	return r.rec("command", "%s: %s", c.Kind, text)
}
func (r *recorder) Decision(d protocols.Decision) error {
	return r.rec("decision", "%s %s", d.Action, d.Reason)
}
func (r *recorder) Columns(cols []protocols.Column) error { return r.rec("columns", "%d", len(cols)) }
func (r *recorder) Row(v [][]byte) error                  { return r.rec("row", "%q", v) }
func (r *recorder) Result(res protocols.Result) error {
	return r.rec("result", "%s %d", res.Tag, res.Rows)
}
func (r *recorder) Parameters(name string, ps []protocols.Param) error {
	var b strings.Builder
	for _, p := range ps {
		if p.Withheld {
			fmt.Fprintf(&b, " withheld(%d)", p.Omitted)
		} else {
			fmt.Fprintf(&b, " %q", p.Value)
		}
	}
	return r.rec("params", "%s:%s", name, b.String())
}
func (r *recorder) Reply(rep protocols.Reply) error {
	return r.rec("reply", "%s %q", rep.Kind, rep.Values)
}
func (r *recorder) Exchange(x protocols.Exchange) error {
	return r.rec("exchange", "%s %s %d", x.Method, x.Path, x.Status)
}
func (r *recorder) Close(reason string) error {
	r.closed = reason
	return r.rec("close", "%s", reason)
}

// recorders opens recorders on one log; fail refuses to open.
type recorders struct {
	log    *log
	fail   bool
	failOn string
	opened []*recorder
}

func (f *recorders) Open(protocols.SessionInfo) (protocols.Recorder, error) {
	if f.fail {
		return nil, errDiskFull
	}
	r := &recorder{log: f.log, failOn: f.failOn}
	f.opened = append(f.opened, r)
	return r, nil
}

// atMasker masks any value containing '@' (and free text the same way).
type atMasker struct{}

func (atMasker) For(protocols.Identity) protocols.Masker { return atMasker{} }
func (atMasker) Plan([]protocols.Column) protocols.RowMasker {
	return atRows{}
}
func (atMasker) Text(b []byte) []byte {
	if !bytes.ContainsRune(b, '@') {
		return b
	}
	return []byte("[masked]")
}

type atRows struct{}

func (atRows) MaskRow(values [][]byte) bool {
	changed := false
	for i, v := range values {
		if bytes.ContainsRune(v, '@') {
			values[i], changed = []byte("[masked]"), true
		}
	}
	return changed
}

// sink is what an engine forwards rows to.
type sink struct {
	log  *log
	fail error
}

func (s *sink) ForwardRow(values [][]byte, changed bool) error {
	if s.fail != nil {
		return s.fail
	}
	s.log.add("forward %q changed=%v", values, changed)
	return nil
}

// env is a gateway with fakes for everything, and its log.
type env struct {
	g       *Gateway
	log     *log
	recs    *recorders
	appr    *approver
	metrics *Metrics
	reg     *prometheus.Registry
	conns   map[string]*protocols.Connection
}

type envOpt func(*Options, *env)

func newEnv(t testing.TB, opts ...envOpt) *env {
	t.Helper()
	e := &env{log: &log{}, reg: prometheus.NewRegistry()}
	e.recs = &recorders{log: e.log}
	e.metrics = NewMetrics(e.reg)
	e.conns = map[string]*protocols.Connection{
		"main": {Name: "main", Protocol: protocols.Postgres, Allow: protocols.Principals{"alice"}, Policy: byRisk{}},
		"kv":   {Name: "kv", Protocol: protocols.Redis, Allow: protocols.Principals{"*"}, DefaultIdentity: "alice"},
	}
	o := Options{Auth: tokens{"alice": "alice-token", "bob": "bob-token"}, Connections: e.conns,
		Classifier: markers{}, Recorders: e.recs, Metrics: e.metrics}
	for _, f := range opts {
		f(&o, e)
	}
	g, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	e.g = g
	return e
}

func withApprover(hold bool) envOpt {
	return func(o *Options, e *env) {
		e.appr = newApprover(hold)
		o.Approver = e.appr
	}
}

func withMasking(o *Options, e *env) { e.conns["main"].Masking = atMasker{} }

var alice = Caller{Protocol: protocols.Postgres, User: "alice", Secret: "alice-token", Connection: "main", Peer: "127.0.0.1:5555", Local: true}

// start admits and starts alice's session on main.
func (e *env) start(t *testing.T) *Session {
	t.Helper()
	s, err := e.g.Admit(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *env) counter(c prometheus.Collector, labels ...string) float64 {
	var m dto.Metric
	switch v := c.(type) {
	case *prometheus.CounterVec:
		_ = v.WithLabelValues(labels...).Write(&m)
		return m.GetCounter().GetValue()
	case *prometheus.GaugeVec:
		_ = v.WithLabelValues(labels...).Write(&m)
		return m.GetGauge().GetValue()
	}
	panic("unknown collector")
}

func query(text string) *protocols.Command {
	return &protocols.Command{Protocol: protocols.Postgres, Text: text, Kind: "query"}
}
