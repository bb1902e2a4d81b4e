package session

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

// denyAll refuses every command, as a policy a reload tightened.
type denyAll struct{}

func (denyAll) Decide(_ protocols.Identity, c *protocols.Classification) protocols.Decision {
	return protocols.Decision{Action: protocols.Deny, Risk: c.Risk, Reason: "tightened by the reload"}
}

func reloaded(e *env, change func(map[string]*protocols.Connection)) {
	conns := map[string]*protocols.Connection{}
	for name, c := range e.conns {
		cp := *c
		conns[name] = &cp
	}
	change(conns)
	e.g.Live().Reload(conns)
}

// withHashedTokens authenticates alice by her token's SHA-256, as the
// identities do (the env's tokens prove by the token's bytes).
func withHashedTokens(o *Options, _ *env) {
	auth := &hashedTokens{}
	auth.set(map[string]string{"alice": "alice-token"})
	o.Auth = auth
}

func TestReloadReachesOpenSessions(t *testing.T) {
	e := newEnv(t, withHashedTokens)
	s := e.start(t)
	ctx := context.Background()
	if dec, err := s.Check(ctx, query("SELECT 1")); err != nil || dec.Action != protocols.Allow {
		t.Fatalf("before the reload: %v, %v", dec, err)
	}
	reloaded(e, func(c map[string]*protocols.Connection) {
		c["main"].Policy = denyAll{}
		c["main"].Masking = atMasker{}
	})
	dec, err := s.Check(ctx, query("SELECT 1"))
	if err != nil || dec.Action != protocols.Deny || dec.Reason != "tightened by the reload" {
		t.Fatalf("the next command after the reload: %v, %v", dec, err)
	}
	if s.Masker() == nil {
		t.Fatal("the reload's masking did not reach the open session")
	}
	snk := &sink{log: e.log}
	res := s.Results(snk)
	cols := []protocols.Column{{Name: "email"}}
	if err := res.Begin(cols, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := res.Row([][]byte{[]byte("ann@example.com")}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(e.log.all(), "\n"); !strings.Contains(got, `forward ["[masked]"] changed=true`) {
		t.Errorf("rows after the reload are not masked:\n%s", got)
	}
}

func TestReloadRevokesAccess(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(map[string]*protocols.Connection)
		reason string
	}{
		{"connection removed", func(c map[string]*protocols.Connection) { delete(c, "main") }, `connection "main" was removed`},
		{"caller no longer allowed", func(c map[string]*protocols.Connection) { c["main"].Allow = protocols.Principals{"bob"} },
			`identity "alice" may no longer use connection "main"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, withHashedTokens)
			s := e.start(t)
			reloaded(e, tc.change)
			dec, err := s.Check(context.Background(), query("SELECT 1"))
			if err != nil || dec.Action != protocols.Deny || !strings.Contains(dec.Reason, tc.reason) {
				t.Fatalf("Check after the reload: %+v, %v", dec, err)
			}
			if err := s.Record(query("EXECUTE p"), "EXECUTE p"); !errors.Is(err, ErrCredentialEnded) {
				t.Fatalf("a prepared statement's run after the reload: %v", err)
			}
			if _, err := e.g.Admit(context.Background(), alice); tc.name == "connection removed" && !errors.Is(err, ErrNoConnection) {
				t.Fatalf("a new session after the reload: %v", err)
			}
		})
	}
}

// hashedTokens authenticates by the tokens' SHA-256, as the identities do;
// a reload replaces them.
type hashedTokens struct {
	m atomic.Pointer[map[string]string]
}

func (a *hashedTokens) set(m map[string]string) { a.m.Store(&m) }

func (a *hashedTokens) Authenticate(_ context.Context, name, secret string) (protocols.Identity, error) {
	if tok, ok := (*a.m.Load())[name]; ok && tok == secret {
		return protocols.Identity{Name: name, Method: "token"}, nil
	}
	return protocols.Identity{}, protocols.ErrAuthFailed
}

func (a *hashedTokens) AuthenticateProof(name string, verify func([32]byte) bool) (protocols.Identity, error) {
	tok, ok := (*a.m.Load())[name]
	if ok && verify(sha256.Sum256([]byte(tok))) {
		return protocols.Identity{Name: name, Method: "token"}, nil
	}
	return protocols.Identity{}, protocols.ErrAuthFailed
}

func TestReloadChecksTheTokenAgain(t *testing.T) {
	auth := &hashedTokens{}
	auth.set(map[string]string{"alice": "alice-token"})
	e := newEnv(t, func(o *Options, _ *env) { o.Auth = auth })
	s := e.start(t)
	ctx := context.Background()
	reloaded(e, func(map[string]*protocols.Connection) {}) // the same token
	if dec, err := s.Check(ctx, query("SELECT 1")); err != nil || dec.Action != protocols.Allow {
		t.Fatalf("after a reload that kept the token: %v, %v", dec, err)
	}
	auth.set(map[string]string{"alice": "a-new-token"})
	reloaded(e, func(map[string]*protocols.Connection) {})
	dec, err := s.Check(ctx, query("SELECT 1"))
	if err != nil || dec.Action != protocols.Deny || !strings.Contains(dec.Reason, "no longer has the token") {
		t.Fatalf("after the token changed: %+v, %v", dec, err)
	}
}

func TestDrainWithdrawsHeldCommands(t *testing.T) {
	e := newEnv(t, withApprover(true))
	s := e.start(t)
	done := make(chan error, 1)
	go func() {
		_, err := s.Check(context.Background(), query("DELETE FROM t /*review*/"))
		done <- err
	}()
	<-e.appr.held
	e.g.Live().Drain()
	if err := <-done; !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("the held command at the drain: %v", err)
	}
	if got := strings.Join(e.log.all(), "\n"); !strings.Contains(got, "review abandoned: Airlock is shutting down") {
		t.Errorf("the recording does not say why:\n%s", got)
	}
	// Nothing new is held once the drain began; other commands run.
	if _, err := s.Check(context.Background(), query("DELETE FROM u /*review*/")); !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("a command to hold during the drain: %v", err)
	}
	if dec, err := s.Check(context.Background(), query("SELECT 1")); err != nil || dec.Action != protocols.Allow {
		t.Fatalf("a command with no review during the drain: %v, %v", dec, err)
	}
}
