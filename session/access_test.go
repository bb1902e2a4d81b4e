package session

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

// auditing is byRisk in audit mode for everyone.
type auditing struct{ byRisk }

func (auditing) Enforces(protocols.Identity) bool { return false }

// lifting is byRisk that lets an overlay "allow-high" allow high risk.
type lifting struct{ byRisk }

func (p lifting) DecideGranted(id protocols.Identity, c *protocols.Classification, g *protocols.AccessGrant) protocols.Decision {
	d := p.Decide(id, c)
	if g.Overlay == "allow-high" && c.Risk == protocols.RiskHigh {
		d.Action, d.Reason = protocols.Allow, ""
	}
	return d
}

// grantSet is an in-memory protocols.AccessGrants that counts lookups.
type grantSet struct {
	mu      sync.Mutex
	version atomic.Uint64
	grants  []*protocols.AccessGrant
	lookups int
	used    []string
}

func newGrantSet() *grantSet {
	g := &grantSet{}
	g.version.Store(1)
	return g
}

func (g *grantSet) Version() uint64 { return g.version.Load() }

func (g *grantSet) Lookup(conn, identity string, now time.Time) *protocols.AccessGrant {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lookups++
	for _, x := range g.grants {
		if x.Connection == conn && x.Identity == identity && now.Before(x.Ends) {
			return x
		}
	}
	return nil
}

func (g *grantSet) Used(x *protocols.AccessGrant, s protocols.SessionInfo) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.used = append(g.used, x.ID+"@"+s.ID)
}

func (g *grantSet) set(gs ...*protocols.AccessGrant) {
	g.mu.Lock()
	g.grants = gs
	g.mu.Unlock()
	g.version.Add(1)
}

func TestAuditModeRecordsCountsAndRuns(t *testing.T) {
	e := newEnv(t, withApprover(true), func(o *Options, e *env) { e.conns["main"].Policy = auditing{} })
	s := e.start(t)
	for _, text := range []string{"DROP TABLE t /*review*/", "COPY x TO PROGRAM 'id' /*deny*/", "SELECT 1"} {
		dec, err := s.Check(context.Background(), query(text))
		if err != nil || dec.Action != protocols.Allow {
			t.Fatalf("%s: %+v, %v", text, dec, err)
		}
	}
	if len(e.appr.requests) != 0 {
		t.Fatal("audit mode asked for a review")
	}
	got := strings.Join(e.log.all(), "\n")
	for _, want := range []string{"decision allow audit mode, not enforced: approval required", "decision allow audit mode, not enforced: denied by policy"} {
		if !strings.Contains(got, want) {
			t.Errorf("recording lacks %q:\n%s", want, got)
		}
	}
	for _, c := range []struct {
		action, risk string
	}{{"review", "high"}, {"deny", "critical"}, {"allow", "none"}} {
		if n := e.counter(e.metrics.Commands, "postgres", "main", c.action, c.risk, "false"); n != 1 {
			t.Errorf("commands{%s,%s,enforced=false} = %v", c.action, c.risk, n)
		}
		if n := e.counter(e.metrics.Commands, "postgres", "main", c.action, c.risk, "true"); n != 0 {
			t.Errorf("commands{%s,%s,enforced=true} = %v", c.action, c.risk, n)
		}
	}
}

func TestAuditDecisionFields(t *testing.T) {
	rec := &fieldRecorder{}
	e := newEnv(t, func(o *Options, e *env) {
		e.conns["main"].Policy = auditing{}
		o.Recorders = fieldRecorders{rec}
	})
	s := e.start(t)
	if _, err := s.Check(context.Background(), query("DROP TABLE t /*review*/")); err != nil {
		t.Fatal(err)
	}
	d := rec.last()
	if !d.Audit || d.Action != protocols.Allow || d.PolicyAction != protocols.Review || d.Verdict() != protocols.Review {
		t.Fatalf("recorded decision %+v", d)
	}
}

func TestAccessGrantAppliesUntilItEnds(t *testing.T) {
	grants := newGrantSet()
	rec := &fieldRecorder{}
	e := newEnv(t, withApprover(false), func(o *Options, e *env) {
		e.conns["main"].Policy = lifting{}
		o.Grants = grants
		o.Recorders = fieldRecorders{rec}
	})
	s := e.start(t)
	check := func(text string) protocols.Decision {
		t.Helper()
		d, err := s.Check(context.Background(), query(text))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := check("DELETE FROM t /*review*/"); d.Action != protocols.Deny || d.Grant != "" {
		t.Fatalf("without a grant: %+v", d)
	}
	grants.set(&protocols.AccessGrant{ID: "g1", Identity: "alice", Connection: "main", Ends: time.Now().Add(time.Hour), Overlay: "allow-high"},
		&protocols.AccessGrant{ID: "g2", Identity: "bob", Connection: "main", Ends: time.Now().Add(time.Hour), Overlay: "allow-high"})
	if d := check("DELETE FROM t /*review*/"); d.Action != protocols.Allow || d.Grant != "g1" {
		t.Fatalf("under the grant: %+v", d)
	}
	if d := rec.last(); d.Grant != "g1" {
		t.Fatalf("recorded without the grant: %+v", d)
	}
	if d := check("COPY x TO PROGRAM 'id' /*deny*/"); d.Action != protocols.Deny || d.Grant != "g1" {
		t.Fatalf("a denial under the grant: %+v", d)
	}
	if d := check("SELECT 1"); d.Action != protocols.Allow || d.Grant != "g1" {
		t.Fatalf("a read under the grant: %+v", d)
	}
	lookups := grants.lookups
	for range 100 {
		check("SELECT 1")
	}
	if grants.lookups != lookups {
		t.Errorf("%d lookups for 100 commands while no grant changed", grants.lookups-lookups)
	}
	if n := e.counter(e.metrics.GrantedCommands, "postgres", "main", "lifted"); n != 1 {
		t.Errorf("lifted = %v", n)
	}
	if n := e.counter(e.metrics.GrantedCommands, "postgres", "main", "unchanged"); n != 102 {
		t.Errorf("unchanged = %v", n)
	}
	if len(grants.used) != 1 || !strings.HasPrefix(grants.used[0], "g1@") {
		t.Errorf("used = %v, want g1 once", grants.used)
	}
	// Revoked: the next command is judged without it.
	grants.set()
	if d := check("DELETE FROM t /*review*/"); d.Action != protocols.Deny || d.Grant != "" {
		t.Fatalf("after revocation: %+v", d)
	}
	// Ended between versions: the clock alone ends it.
	grants.set(&protocols.AccessGrant{ID: "g3", Identity: "alice", Connection: "main", Ends: time.Now().Add(50 * time.Millisecond), Overlay: "allow-high"})
	if d := check("DELETE FROM t /*review*/"); d.Action != protocols.Allow {
		t.Fatalf("short grant: %+v", d)
	}
	time.Sleep(60 * time.Millisecond)
	if d := check("DELETE FROM t /*review*/"); d.Action != protocols.Deny || d.Grant != "" {
		t.Fatalf("after the grant's end: %+v", d)
	}
}

// previewer previews every command, quoting its text in a note.
type previewer struct{ calls atomic.Int32 }

func (p *previewer) Preview(ctx context.Context, conn *protocols.Connection, cmd *protocols.Command, cls *protocols.Classification, o protocols.PreviewOptions) *protocols.Preview {
	p.calls.Add(1)
	n := int64(42)
	return &protocols.Preview{Status: protocols.PreviewOK, Note: "about " + cmd.Text,
		Effects: []protocols.PreviewEffect{{Statement: 1, Kind: "delete", Object: conn.Name, EstimatedRows: &n}}}
}

func TestReviewOffersAMaskedPreview(t *testing.T) {
	pv := &previewer{}
	e := newEnv(t, withApprover(false), withMasking, func(o *Options, e *env) {
		o.Previewers = map[protocols.Protocol]protocols.Previewer{protocols.Postgres: pv}
	})
	s := e.start(t)
	if _, err := s.Check(context.Background(), query("DELETE FROM t WHERE mail = 'a@b.c' /*review*/")); err != nil {
		t.Fatal(err)
	}
	req := e.appr.last()
	if req.Preview == nil {
		t.Fatal("no preview offered")
	}
	if pv.calls.Load() != 0 {
		t.Fatal("the preview ran before the approver asked for it")
	}
	p := req.Preview(context.Background(), protocols.PreviewOptions{})
	if p.Note != "[masked]" || *p.Effects[0].EstimatedRows != 42 {
		t.Fatalf("preview %+v", p)
	}
	// A connection of a protocol without a previewer gets none.
	e2 := newEnv(t, withApprover(false))
	s2 := e2.start(t)
	if _, err := s2.Check(context.Background(), query("DELETE FROM t /*review*/")); err != nil {
		t.Fatal(err)
	}
	if e2.appr.last().Preview != nil {
		t.Fatal("a preview without a previewer")
	}
}

// fieldRecorder keeps the decisions it records.
type fieldRecorder struct {
	NopRecorder
	mu        sync.Mutex
	decisions []protocols.Decision
}

func (r *fieldRecorder) Decision(d protocols.Decision) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.decisions = append(r.decisions, d)
	return nil
}

func (r *fieldRecorder) last() protocols.Decision {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.decisions[len(r.decisions)-1]
}

type fieldRecorders struct{ r *fieldRecorder }

func (f fieldRecorders) Open(protocols.SessionInfo) (protocols.Recorder, error) { return f.r, nil }

// BenchmarkAccessGrant measures what Check pays per command for access
// grants: nothing changed (one atomic load), and a grant in force (and a
// clock read).
func BenchmarkAccessGrant(b *testing.B) {
	for _, tc := range []struct {
		name   string
		grants []*protocols.AccessGrant
	}{
		{"none", nil},
		{"in force", []*protocols.AccessGrant{{ID: "g", Identity: "alice", Connection: "main", Ends: time.Now().Add(time.Hour)}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			grants := newGrantSet()
			grants.set(tc.grants...)
			e := newEnv(b, func(o *Options, e *env) { o.Grants = grants })
			s, err := e.g.Admit(context.Background(), alice)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Start(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				s.accessGrant()
			}
		})
	}
}
