package session

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
)

// leasing is an authenticator whose secrets carry a lease the test ends.
type leasing struct {
	tokens
	ended  atomic.Bool
	leased []string
}

func (a *leasing) Lease(secret string) func() error {
	a.leased = append(a.leased, secret)
	return func() error {
		if a.ended.Load() {
			return errors.New("the login credential was revoked")
		}
		return nil
	}
}

func withLeases(a *leasing) envOpt {
	return func(o *Options, _ *env) { o.Auth = a }
}

// TestLeaseEndsCommands: once the lease ends, every command is refused
// with its reason, recorded and counted, and the session goes on refusing.
func TestLeaseEndsCommands(t *testing.T) {
	a := &leasing{tokens: tokens{"alice": "alice-token"}}
	e := newEnv(t, withLeases(a))
	s := e.start(t)
	if !slices.Equal(a.leased, []string{"alice-token"}) {
		t.Fatalf("leases asked for %q, want the admitted secret", a.leased)
	}
	ctx := context.Background()
	if dec, err := s.Check(ctx, query("SELECT 1")); err != nil || dec.Action != protocols.Allow {
		t.Fatalf("before the end: %+v, %v", dec, err)
	}
	a.ended.Store(true)
	for _, text := range []string{"SELECT 2", "DELETE FROM t /*review*/"} {
		dec, err := s.Check(ctx, query(text))
		if err != nil || dec.Action != protocols.Deny || dec.Reason != "the login credential was revoked" {
			t.Fatalf("%s after the end: %+v, %v", text, dec, err)
		}
	}
	got := e.log.all()
	if want := "decision deny the login credential was revoked"; got[len(got)-1] != want || got[len(got)-3] != want {
		t.Fatalf("recorded %q", got)
	}
	if n := e.counter(e.metrics.Commands, "postgres", "main", "deny", "none", "true"); n != 1 {
		t.Errorf("refused reads counted %v, want 1", n)
	}
}

// TestLeaseEndsDuringHold: an approval that arrives after the credential
// ended does not run the command.
func TestLeaseEndsDuringHold(t *testing.T) {
	a := &leasing{tokens: tokens{"alice": "alice-token"}}
	e := newEnv(t, withLeases(a), withApprover(true))
	s := e.start(t)
	done := held(t, e, s)
	a.ended.Store(true)
	e.appr.decide <- protocols.Allow
	r := wait(t, done)
	if r.err != nil || r.dec.Action != protocols.Deny || !strings.Contains(r.dec.Reason, "revoked") || r.dec.ApprovalID != "req-1" {
		t.Fatalf("Check = %+v, %v; want a refusal naming the revocation and the request", r.dec, r.err)
	}
}

// TestNoLeaseNeverEnds: an authenticator without leases, or a nil lease,
// changes nothing.
func TestNoLeaseNeverEnds(t *testing.T) {
	e := newEnv(t)
	s := e.start(t)
	if s.lease != nil {
		t.Fatal("a session without a Leaser has a lease")
	}
	if dec, err := s.Check(context.Background(), query("SELECT 1")); err != nil || dec.Action != protocols.Allow {
		t.Fatalf("Check = %+v, %v", dec, err)
	}
}

// TestLeaseEndsPreparedRuns: a run of a prepared statement, which Record
// takes without deciding again, ends the session once the lease ends.
func TestLeaseEndsPreparedRuns(t *testing.T) {
	a := &leasing{tokens: tokens{"alice": "alice-token"}}
	e := newEnv(t, withLeases(a))
	s := e.start(t)
	if err := s.Record(query("SELECT 1"), "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	a.ended.Store(true)
	err := s.Record(query("SELECT 1"), "SELECT 1")
	if !errors.Is(err, ErrCredentialEnded) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("Record after the end: %v", err)
	}
	if got := e.log.all(); got[len(got)-1] != "decision deny the login credential was revoked" {
		t.Fatalf("recorded %q", got)
	}
}

// proofLeasing checks proofs of its tokens and leases the sessions they
// admit, as an authenticator does for a short-lived credential's proof.
type proofLeasing struct{ *leasing }

func (a proofLeasing) AuthenticateProofLease(_ context.Context, name string, verify func([32]byte) bool) (protocols.Identity, func() error, error) {
	id, err := a.AuthenticateProof(name, verify)
	if err != nil {
		return id, nil, err
	}
	return id, a.Lease("proof of " + name), nil
}

// TestLeaseOfAProof: a session admitted by a proof holds the lease the
// proof's authenticator gives, and is refused once it ends; the secret's
// Leaser is not asked (there is no secret).
func TestLeaseOfAProof(t *testing.T) {
	a := &leasing{tokens: tokens{"alice": "alice-token"}}
	e := newEnv(t, func(o *Options, _ *env) { o.Auth = proofLeasing{a} })
	c := alice
	c.Secret, c.Proof, c.Local = "", proves("alice-token"), false
	s, err := e.g.Admit(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close("done")
	if !slices.Equal(a.leased, []string{"proof of alice"}) {
		t.Fatalf("leases %q, want the proof's only", a.leased)
	}
	ctx := context.Background()
	if dec, err := s.Check(ctx, query("SELECT 1")); err != nil || dec.Action != protocols.Allow {
		t.Fatalf("before the end: %+v, %v", dec, err)
	}
	a.ended.Store(true)
	if dec, err := s.Check(ctx, query("SELECT 2")); err != nil || dec.Action != protocols.Deny || !strings.Contains(dec.Reason, "revoked") {
		t.Fatalf("after the end: %+v, %v", dec, err)
	}
	c.Proof = proves("bob-token")
	if _, err := e.g.Admit(context.Background(), c); !errors.Is(err, ErrProofMismatch) {
		t.Fatalf("a wrong proof: %v", err)
	}
}
