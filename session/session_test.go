package session

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

func TestAdmitRefusals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		caller func(c Caller) Caller
		want   error
		reason string
	}{
		{"secret in clear from afar", func(c Caller) Caller { c.Local = false; return c }, ErrTLSRequired, "tls"},
		{"wrong token", func(c Caller) Caller { c.Secret = "nope"; return c }, ErrAuthFailed, "token"},
		{"unknown name", func(c Caller) Caller { c.User = "mallory"; return c }, ErrAuthFailed, "token"},
		{"unknown connection", func(c Caller) Caller { c.Connection = "nope"; return c }, ErrNoConnection, "connection"},
		{"not allowed", func(c Caller) Caller { c.User, c.Secret = "bob", "bob-token"; return c }, ErrNoConnection, "connection"},
		{"other protocol", func(c Caller) Caller { c.Connection = "kv"; return c }, ErrNoConnection, "connection"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			s, err := e.g.Admit(context.Background(), tc.caller(alice))
			if s != nil || !errors.Is(err, tc.want) {
				t.Fatalf("Admit = %v, %v; want %v", s, err, tc.want)
			}
			var ae *AdmitError
			if !errors.As(err, &ae) {
				t.Fatalf("%T is not an *AdmitError", err)
			}
			if strings.Contains(err.Error(), "token") && strings.Contains(err.Error(), "alice-token") {
				t.Fatalf("the error shows the secret: %v", err)
			}
			if n := e.counter(e.metrics.AuthFailures, "postgres", tc.reason); n != 1 {
				t.Errorf("auth failures (%s) = %v, want 1", tc.reason, n)
			}
			if n := e.counter(e.metrics.Connections, "postgres", "", "rejected"); n != 1 {
				t.Errorf("connections rejected = %v, want 1", n)
			}
			if len(e.recs.opened) != 0 {
				t.Error("a refused caller got a recording")
			}
		})
	}
}

func TestAdmitNamesTheIdentityNotTheSecret(t *testing.T) {
	e := newEnv(t)
	c := alice
	c.User, c.Secret = "bob", "bob-token"
	_, err := e.g.Admit(context.Background(), c)
	if want := `connection "main" does not exist or identity "bob" may not use it`; err == nil || err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
}

func TestAdmitDefaultIdentity(t *testing.T) {
	e := newEnv(t)
	s, err := e.g.Admit(context.Background(), Caller{Protocol: protocols.Redis, Secret: "alice-token", Connection: "kv", Local: true})
	if err != nil || s.Info.Identity.Name != "alice" {
		t.Fatalf("Admit = %+v, %v", s, err)
	}
	if _, err := e.g.Admit(context.Background(), Caller{Protocol: protocols.Redis, Secret: "bob-token", Connection: "kv", Local: true}); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("bob's token as alice: %v", err)
	}
}

func TestStartFailsClosed(t *testing.T) {
	e := newEnv(t)
	e.recs.fail = true
	s, err := e.g.Admit(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); !errors.Is(err, ErrRecordingUnavailable) {
		t.Fatalf("Start = %v, want ErrRecordingUnavailable", err)
	}
	if n := e.counter(e.metrics.Connections, "postgres", "main", "error"); n != 1 {
		t.Errorf("connection errors = %v", n)
	}
	if n := e.counter(e.metrics.Active, "postgres", "main"); n != 0 {
		t.Errorf("active = %v", n)
	}
}

func TestStartAndClose(t *testing.T) {
	activeNow := 0
	e := newEnv(t, func(o *Options, _ *env) {
		o.Active = func() func() { activeNow++; return func() { activeNow-- } }
	})
	s := e.start(t)
	if s.Info.ID == "" || s.Info.Identity.Name != "alice" || s.Info.Connection != "main" || s.Info.ClientAddr != "127.0.0.1:5555" {
		t.Fatalf("info %+v", s.Info)
	}
	if n := e.counter(e.metrics.Active, "postgres", "main"); n != 1 || activeNow != 1 {
		t.Fatalf("active = %v, hook %d", n, activeNow)
	}
	if n := e.counter(e.metrics.Connections, "postgres", "main", "accepted"); n != 1 {
		t.Fatalf("accepted = %v", n)
	}
	s.Close("client terminated")
	s.Close("again")
	if n := e.counter(e.metrics.Active, "postgres", "main"); n != 0 || activeNow != 0 {
		t.Fatalf("active after close = %v, hook %d", n, activeNow)
	}
	if r := e.recs.opened[0]; r.closed != "client terminated" {
		t.Fatalf("closed with %q", r.closed)
	}
}

func TestAbortCountsTheUpstream(t *testing.T) {
	e := newEnv(t)
	s, err := e.g.Admit(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}
	s.Abort(errors.New("dial tcp: connection refused"))
	if n := e.counter(e.metrics.UpstreamErrors, "postgres", "main"); n != 1 {
		t.Errorf("upstream errors = %v", n)
	}
	if n := e.counter(e.metrics.Connections, "postgres", "main", "error"); n != 1 {
		t.Errorf("connection errors = %v", n)
	}
}

func TestCheckActions(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		opts       []envOpt
		want       protocols.Action
		reason     string
	}{
		{"allow", "SELECT 1", nil, protocols.Allow, ""},
		{"deny", "DROP TABLE t /*deny*/", nil, protocols.Deny, "denied by policy"},
		{"review without approvals", "DELETE FROM t /*review*/", nil, protocols.Deny, "no approval channel is configured"},
		{"review in retry mode", "DELETE FROM t /*review*/", []envOpt{withApprover(false)}, protocols.Deny, "retry once approved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opts...)
			s := e.start(t)
			dec, err := s.Check(context.Background(), query(tc.text))
			if err != nil || dec.Action != tc.want || !strings.Contains(dec.Reason, tc.reason) {
				t.Fatalf("Check = %+v, %v; want %s (%s)", dec, err, tc.want, tc.reason)
			}
			want := []string{"command query: " + tc.text, "decision " + string(tc.want) + " " + dec.Reason}
			if got := e.log.all(); !slices.Equal(got, want) {
				t.Fatalf("recorded %q, want %q", got, want)
			}
			for _, a := range []protocols.Action{protocols.Allow, protocols.Review, protocols.Deny} {
				want := 0.0
				if a == tc.want {
					want = 1
				}
				if n := e.counter(e.metrics.Commands, "postgres", "main", string(a), dec.Risk.String(), "true"); n != want {
					t.Errorf("commands{%s} = %v, want %v", a, n, want)
				}
			}
		})
	}
}

func TestCheckRecordsRedactedText(t *testing.T) {
	e := newEnv(t)
	s := e.start(t)
	if _, err := s.Check(context.Background(), query("ALTER ROLE x PASSWORD 's3cret'")); err != nil {
		t.Fatal(err)
	}
	for _, ev := range e.log.all() {
		if strings.Contains(ev, "s3cret") {
			t.Fatalf("recorded the secret: %q", ev)
		}
	}
}

func TestCheckMasksRecordedText(t *testing.T) {
	e := newEnv(t, withMasking)
	s := e.start(t)
	if _, err := s.Check(context.Background(), query("SELECT * FROM users WHERE email = 'a@example.com'")); err != nil {
		t.Fatal(err)
	}
	if got := e.log.all()[0]; got != "command query: [masked]" {
		t.Fatalf("recorded %q", got)
	}
}

// held starts a Check of a command held for review and waits until it is.
func held(t *testing.T, e *env, s *Session) chan checkResult {
	t.Helper()
	done := make(chan checkResult, 1)
	go func() {
		dec, err := s.Check(context.Background(), query("DELETE FROM t /*review*/"))
		done <- checkResult{dec, err}
	}()
	select {
	case <-e.appr.held:
	case <-time.After(10 * time.Second):
		t.Fatal("the command was not held")
	}
	return done
}

type checkResult struct {
	dec protocols.Decision
	err error
}

func wait(t *testing.T, done chan checkResult) checkResult {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("the held command did not end")
	}
	return checkResult{}
}

func TestHold(t *testing.T) {
	for _, tc := range []struct {
		name    string
		end     func(s *Session, e *env, gone func())
		wantErr error
		want    protocols.Action
	}{
		{"approved", func(_ *Session, e *env, _ func()) { e.appr.decide <- protocols.Allow }, nil, protocols.Allow},
		{"denied", func(_ *Session, e *env, _ func()) { e.appr.decide <- protocols.Deny }, nil, protocols.Deny},
		{"cancelled", func(s *Session, _ *env, _ func()) {
			if !s.Cancel() {
				panic("Cancel found no held command")
			}
		}, ErrCanceled, ""},
		{"client gone", func(_ *Session, _ *env, gone func()) { gone() }, ErrClientGone, ""},
		{"session ending", func(s *Session, _ *env, _ func()) { s.Interrupt() }, ErrSessionEnded, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, withApprover(true))
			s := e.start(t)
			var notified []string
			goneCh := make(chan func(), 1)
			watching, stopped := 0, 0
			s.SetHold(Hold{
				Notify: func(msg string) { notified = append(notified, msg) },
				Watch: func(gone func()) func() {
					watching++
					goneCh <- gone
					return func() { stopped++ }
				},
			})
			done := held(t, e, s)
			tc.end(s, e, <-goneCh)
			r := wait(t, done)
			if !errors.Is(r.err, tc.wantErr) || (tc.wantErr == nil && r.dec.Action != tc.want) {
				t.Fatalf("Check = %+v, %v; want %v %v", r.dec, r.err, tc.want, tc.wantErr)
			}
			if len(notified) != 1 || !strings.Contains(notified[0], "req-1") || watching != 1 || stopped != 1 {
				t.Fatalf("notified %q, watch started %d, stopped %d", notified, watching, stopped)
			}
			if s.Cancel() {
				t.Error("Cancel found a held command after the hold")
			}
			events := e.log.all()
			last := events[len(events)-1]
			if tc.wantErr != nil && !strings.HasPrefix(last, "decision deny review abandoned") {
				t.Errorf("an abandoned review is recorded as %q", last)
			}
			if tc.wantErr == nil && last != "decision "+string(tc.want)+" approval required" {
				t.Errorf("the decision is recorded as %q", last)
			}
			if n := e.counter(e.metrics.Commands, "postgres", "main", "deny", "high", "true") + e.counter(e.metrics.Commands, "postgres", "main", "allow", "high", "true"); n != 1 {
				t.Errorf("the held command was counted %v times", n)
			}
		})
	}
}

func TestCancelWithoutHold(t *testing.T) {
	e := newEnv(t, withApprover(true))
	s := e.start(t)
	if s.Cancel() {
		t.Fatal("Cancel claimed a held command while none was held")
	}
	// A cancel between commands leaves the next one alone.
	if dec, err := s.Check(context.Background(), query("SELECT 1")); err != nil || dec.Action != protocols.Allow {
		t.Fatalf("Check after Cancel = %+v, %v", dec, err)
	}
}

func TestInterruptEndsLaterHolds(t *testing.T) {
	e := newEnv(t, withApprover(true))
	s := e.start(t)
	s.Interrupt()
	if _, err := s.Check(context.Background(), query("DELETE FROM t /*review*/")); !errors.Is(err, ErrSessionEnded) {
		t.Fatalf("Check after Interrupt = %v", err)
	}
}

func TestRecordingFailureEndsTheCheck(t *testing.T) {
	for _, frame := range []string{"command", "decision"} {
		t.Run(frame, func(t *testing.T) {
			e := newEnv(t)
			e.recs.failOn = frame
			s := e.start(t)
			_, err := s.Check(context.Background(), query("SELECT 1"))
			if !errors.Is(err, ErrRecordingFailed) || !errors.Is(err, errDiskFull) {
				t.Fatalf("Check = %v, want ErrRecordingFailed", err)
			}
			if n := e.counter(e.metrics.Commands, "postgres", "main", "allow", "none", "true"); n != 0 {
				t.Errorf("an unrecorded command was counted as allowed")
			}
		})
	}
}

func TestResultsMaskRecordForward(t *testing.T) {
	e := newEnv(t, withMasking)
	s := e.start(t)
	sk := &sink{log: e.log}
	r := s.Results(sk)
	cols := []protocols.Column{{Name: "id", Type: protocols.TypeNumber}, {Name: "email", Type: protocols.TypeText}}
	start := time.Now()
	if err := r.Begin(cols, start); err != nil {
		t.Fatal(err)
	}
	for _, row := range [][][]byte{{[]byte("1"), []byte("ada@example.com")}, {[]byte("2"), nil}} {
		if err := r.Row(row); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.End(protocols.Result{Tag: "SELECT 2", Rows: r.Rows()}, start); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"columns 2",
		`row ["1" "[masked]"]`, `forward ["1" "[masked]"] changed=true`,
		`row ["2" ""]`, `forward ["2" ""] changed=false`,
		"result SELECT 2 2",
	}
	if got := e.log.all(); !slices.Equal(got, want) {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
}

func TestResultsRecordingFailureForwardsNothing(t *testing.T) {
	e := newEnv(t)
	e.recs.failOn = "row"
	s := e.start(t)
	r := s.Results(&sink{log: e.log})
	if err := r.Begin([]protocols.Column{{Name: "a"}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := r.Row([][]byte{[]byte("x")}); !errors.Is(err, ErrRecordingFailed) {
		t.Fatalf("Row = %v", err)
	}
	for _, ev := range e.log.all() {
		if strings.HasPrefix(ev, "forward") {
			t.Fatalf("an unrecorded row was forwarded: %q", ev)
		}
	}
}

func TestResultsPlanOncePerColumns(t *testing.T) {
	plans := 0
	e := newEnv(t, func(_ *Options, e *env) { e.conns["main"].Masking = countingMasker{&plans} })
	s := e.start(t)
	r := s.Results(&sink{log: e.log})
	cols := []protocols.Column{{Name: "a"}}
	for range 3 {
		if err := r.Begin(cols, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Begin([]protocols.Column{{Name: "a"}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if plans != 2 {
		t.Fatalf("planned %d times, want 2 (once per column slice)", plans)
	}
}

type countingMasker struct{ n *int }

func (m countingMasker) For(protocols.Identity) protocols.Masker { return m }
func (m countingMasker) Plan([]protocols.Column) protocols.RowMasker {
	*m.n++
	return nil
}
func (countingMasker) Text(b []byte) []byte { return b }

func TestResultsWithoutMaskingOrRecordingPass(t *testing.T) {
	e := newEnv(t, func(o *Options, _ *env) { o.Recorders = nil })
	s := e.start(t)
	r := s.Results(&sink{log: e.log})
	if err := r.Begin([]protocols.Column{{Name: "a"}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if r.NeedsValues() {
		t.Fatal("rows need decoding though nothing masks or records them")
	}
}

func TestParametersMasked(t *testing.T) {
	e := newEnv(t, withMasking)
	s := e.start(t)
	err := s.Parameters("p1", []protocols.Param{{Value: []byte("a@b.example")}, {Value: []byte{0, 1}, Binary: true}, {Value: []byte("42")}})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.log.all(); len(got) != 1 || got[0] != `params p1: "[masked]" withheld(2) "42"` {
		t.Fatalf("recorded %q", got)
	}
}

// TestApprovalCoversOneRun follows a statement prepared in SQL and one
// prepared by the protocol: each approved run is one run.
func TestApprovalCoversOneRun(t *testing.T) {
	e := newEnv(t, withApprover(true))
	s := e.start(t)
	ctx := context.Background()
	done := make(chan checkResult, 1)
	go func() {
		dec, err := s.Check(ctx, query("PREPARE wipe AS DELETE FROM t /*review*/"))
		done <- checkResult{dec, err}
	}()
	<-e.appr.held
	e.appr.decide <- protocols.Allow
	if r := wait(t, done); r.err != nil || r.dec.Action != protocols.Allow {
		t.Fatalf("PREPARE = %+v", r)
	}
	if dec, err := s.Check(ctx, query("EXECUTE wipe")); err != nil || dec.Action != protocols.Allow {
		t.Fatalf("first EXECUTE = %+v, %v", dec, err)
	}
	go func() {
		dec, err := s.Check(ctx, query("EXECUTE wipe"))
		done <- checkResult{dec, err}
	}()
	<-e.appr.held
	if req := e.appr.last(); !strings.Contains(req.Classification.Redacted, "PREPARE wipe AS DELETE FROM t") {
		t.Errorf("the reviewer of the second run does not see what it runs: %q", req.Classification.Redacted)
	}
	e.appr.decide <- protocols.Deny
	if r := wait(t, done); r.err != nil || r.dec.Action != protocols.Deny {
		t.Fatalf("second EXECUTE = %+v", r)
	}

	// A statement the protocol prepared, by its private name.
	cmd := query("DELETE FROM t /*review*/")
	g := s.Grant("airlock_approved_1", cmd)
	if dec, err := s.Run(ctx, g, "bind"); err != nil || dec.Action != protocols.Allow {
		t.Fatalf("first run = %+v, %v", dec, err)
	}
	go func() {
		dec, err := s.Check(ctx, query("EXECUTE airlock_approved_1"))
		done <- checkResult{dec, err}
	}()
	<-e.appr.held
	e.appr.decide <- protocols.Deny
	if r := wait(t, done); r.dec.Action != protocols.Deny {
		t.Fatalf("EXECUTE of the private name after its run = %+v", r)
	}
	go func() {
		dec, err := s.Run(ctx, g, "bind")
		done <- checkResult{dec, err}
	}()
	<-e.appr.held
	e.appr.decide <- protocols.Deny
	if r := wait(t, done); r.dec.Action != protocols.Deny {
		t.Fatalf("second run = %+v", r)
	}
}

func TestDecodeModeAllowsAndRecordsNothing(t *testing.T) {
	e := newEnv(t, withMasking)
	g := e.g.WithoutInspection()
	s, err := g.Admit(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if dec, err := s.Check(context.Background(), query("DROP TABLE t /*deny*/")); err != nil || dec.Action != protocols.Allow {
		t.Fatalf("Check = %+v, %v", dec, err)
	}
	if s.Masker() != nil || s.Records() || len(e.recs.opened) != 0 {
		t.Fatal("a measurement-mode session masks or records")
	}
}

// TestAdmitByProof: a proof admits without a secret and without TLS; a
// proof that matches nothing is not counted (the engine asks for the secret
// next), but a proven caller on a connection it may not use is.
func TestAdmitByProof(t *testing.T) {
	byProof := func(user, token, conn string) Caller {
		c := alice
		c.User, c.Secret, c.Proof, c.Connection, c.Local = user, "", proves(token), conn, false
		return c
	}
	e := newEnv(t)
	s, err := e.g.Admit(context.Background(), byProof("alice", "alice-token", "main"))
	if err != nil || s.Info.Identity.Name != "alice" {
		t.Fatalf("Admit by proof = %v, %v", s, err)
	}
	for _, c := range []Caller{byProof("alice", "bob-token", "main"), byProof("mallory", "alice-token", "main")} {
		if _, err := e.g.Admit(context.Background(), c); !errors.Is(err, ErrProofMismatch) {
			t.Fatalf("mismatched proof: %v, want ErrProofMismatch", err)
		}
	}
	if n := e.counter(e.metrics.AuthFailures, "postgres", "token"); n != 0 {
		t.Errorf("a mismatched proof was counted (%v): the engine's next attempt counts", n)
	}
	if _, err := e.g.Admit(context.Background(), byProof("bob", "bob-token", "main")); !errors.Is(err, ErrNoConnection) {
		t.Fatalf("proven caller on a forbidden connection: %v", err)
	}
	if n := e.counter(e.metrics.AuthFailures, "postgres", "connection"); n != 1 {
		t.Errorf("connection refusals = %v, want 1", n)
	}
	e.g.Rejected(protocols.Postgres, "token")
	if n := e.counter(e.metrics.AuthFailures, "postgres", "token"); n != 1 {
		t.Errorf("token refusals after Rejected = %v, want 1", n)
	}
}

// TestAdmitProofNeedsAProofAuthenticator: an authenticator that cannot
// check proofs turns every proof away, so the engine asks for the secret.
func TestAdmitProofNeedsAProofAuthenticator(t *testing.T) {
	g, err := New(Options{Auth: plainAuth{}, Connections: newEnv(t).conns})
	if err != nil {
		t.Fatal(err)
	}
	c := alice
	c.Secret, c.Proof = "", proves("alice-token")
	if _, err := g.Admit(context.Background(), c); !errors.Is(err, ErrProofMismatch) {
		t.Fatalf("Admit = %v, want ErrProofMismatch", err)
	}
}

type plainAuth struct{}

func (plainAuth) Authenticate(context.Context, string, string) (protocols.Identity, error) {
	return protocols.Identity{Name: "alice"}, nil
}

// constant classifies every command alike.
type constant struct{ rule string }

func (c constant) Classify(cmd *protocols.Command) *protocols.Classification {
	return &protocols.Classification{Risk: protocols.RiskHigh, Rules: []string{c.rule}, Redacted: cmd.Text}
}

func TestConnectionClassifier(t *testing.T) {
	e := newEnv(t, func(o *Options, e *env) { e.conns["main"].Classifier = constant{"own.rule"} })
	s := e.start(t)
	dec, err := s.Check(context.Background(), query("SELECT 1"))
	if err != nil || len(dec.Rules) != 1 || dec.Rules[0] != "own.rule" {
		t.Fatalf("the connection's classifier was not used: %+v, %v", dec, err)
	}
	other := &protocols.Command{Protocol: protocols.HTTP, Text: "SELECT 1"}
	if dec, _ := s.Check(context.Background(), other); slices.Contains(dec.Rules, "own.rule") {
		t.Fatalf("the connection's classifier judged another protocol's command: %+v", dec)
	}
}
