package approvals

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/approvals/policy"
	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/session/sqldb"
)

func withAllowed(o *Options) {
	o.Allowed = map[string]protocols.Principals{"prod": {"*"}, "secret": {"carol"}}
}

func accessConfig() Config {
	c := testConfig()
	c.Access = AccessConfig{MaxDuration: 4 * time.Hour, Timeout: 10 * time.Minute, Roles: map[string]RoleConfig{
		"writer": {Description: "writes", OverlayConfig: policy.OverlayConfig{Rules: map[string]string{"write.*": "allow", "schema.*": "allow"}}},
	}}
	return c
}

func TestAccessRequestLifecycle(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(t *testing.T) *SQLStore) {
		ctx := context.Background()
		clk := newClock()
		s, _ := newService(t, open(t), accessConfig(), withClock(clk), withAllowed)
		grants := s.Grants()
		v0 := grants.Version()

		r, err := s.RequestAccess(ctx, alice, AccessInput{Connection: "prod", Role: "writer", Duration: Duration(time.Hour), Reason: "migration 42"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != AccessPending || r.Overlay.Rules["write.*"] != "allow" || r.Required != 1 {
			t.Fatalf("request %+v", r)
		}
		if _, err := s.RequestAccess(ctx, alice, AccessInput{Connection: "prod", Role: "writer", Reason: "again"}); !errors.Is(err, ErrAccessHeld) {
			t.Fatalf("second open request: %v", err)
		}
		if _, err := s.DecideAccess(ctx, alice, r.ID, Approve, ""); !errors.Is(err, ErrForbidden) {
			t.Fatalf("the caller approved their own request: %v", err)
		}
		if grants.Lookup("prod", "alice", clk.Now()) != nil {
			t.Fatal("a pending request is in force")
		}
		got, err := s.DecideAccess(ctx, bob, r.ID, Approve, "ok")
		if err != nil || got.Status != AccessActive || !got.EndsAt.Equal(got.StartsAt.Add(time.Hour)) {
			t.Fatalf("approve: %+v %v", got, err)
		}
		g := grants.Lookup("prod", "alice", clk.Now())
		if g == nil || g.ID != r.ID || grants.Version() == v0 {
			t.Fatalf("an approved grant is not in force on the deciding replica at once: %+v", g)
		}
		if grants.Lookup("prod", "bob", clk.Now()) != nil || grants.Lookup("other", "alice", clk.Now()) != nil {
			t.Fatal("the grant applies to another caller or connection")
		}
		if _, err := s.RevokeAccess(ctx, eve, r.ID, ""); !errors.Is(err, ErrForbidden) {
			t.Fatalf("a bystander revoked: %v", err)
		}
		rev, err := s.RevokeAccess(ctx, carol, r.ID, "done early")
		if err != nil || rev.Status != AccessRevoked || rev.RevokedBy != "carol" {
			t.Fatalf("revoke: %+v %v", rev, err)
		}
		if grants.Lookup("prod", "alice", clk.Now()) != nil {
			t.Fatal("a revoked grant is still in force")
		}
		if _, err := s.RevokeAccess(ctx, carol, r.ID, ""); !errors.Is(err, ErrNotPending) {
			t.Fatalf("revoked twice: %v", err)
		}

		// A grant ends with its window; the sweep says so.
		r2, err := s.RequestAccess(ctx, alice, AccessInput{Connection: "prod", Overlay: &policy.OverlayConfig{Risks: map[string]string{"high": "allow"}}, Duration: Duration(10 * time.Minute), Reason: "hotfix"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.DecideAccess(ctx, carol, r2.ID, Approve, ""); err != nil {
			t.Fatal(err)
		}
		if grants.Lookup("prod", "alice", clk.Now().Add(9*time.Minute)) == nil || grants.Lookup("prod", "alice", clk.Now().Add(10*time.Minute)) != nil {
			t.Fatal("the grant's window is not its duration")
		}
		clk.Add(11 * time.Minute)
		s.access.sweepOnce(ctx)
		if got, _ := s.GetAccess(ctx, alice, r2.ID); got.Status != AccessEnded {
			t.Fatalf("after its window: %s", got.Status)
		}
		if n := metricValue(t, s.m.access.WithLabelValues("ended")); n != 1 {
			t.Errorf("ended events = %v", n)
		}

		// An unanswered request expires; a late vote is refused.
		r3, err := s.RequestAccess(ctx, alice, AccessInput{Connection: "prod", Role: "writer", Reason: "x"})
		if err != nil {
			t.Fatal(err)
		}
		clk.Add(11 * time.Minute)
		if _, err := s.DecideAccess(ctx, bob, r3.ID, Approve, ""); !errors.Is(err, ErrNotPending) {
			t.Fatalf("late approval: %v", err)
		}
		if got, _ := s.GetAccess(ctx, bob, r3.ID); got.Status != AccessExpired {
			t.Fatalf("late request: %s", got.Status)
		}
		list, err := s.ListAccess(ctx, eve, AccessFilter{})
		if err != nil || len(list) != 0 {
			t.Fatalf("eve sees %d requests (%v)", len(list), err)
		}
		if list, _ := s.ListAccess(ctx, bob, AccessFilter{Statuses: []AccessStatus{AccessRevoked}}); len(list) != 1 {
			t.Fatalf("bob sees %d revoked", len(list))
		}
	})
}

func TestAccessRequestRefusals(t *testing.T) {
	st := openTestStore(t, sqldb.Config{DSN: protocols.Secret(t.TempDir() + "/a.db")})
	cfg := accessConfig()
	off := false
	s, _ := newService(t, st, cfg, withAllowed, withConns(map[string]ConnectionConfig{
		"secret": {Access: &ConnectionAccess{Roles: []string{}, Custom: &off}},
	}))
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		who  protocols.Identity
		in   AccessInput
		want string
	}{
		{"unknown connection", alice, AccessInput{Connection: "nope", Role: "writer", Reason: "r"}, "does not exist"},
		{"connection not allowed", alice, AccessInput{Connection: "secret", Role: "writer", Reason: "r"}, "does not exist"},
		{"role not offered", carol, AccessInput{Connection: "secret", Role: "writer", Reason: "r"}, "not offered"},
		{"custom not offered", carol, AccessInput{Connection: "secret", Overlay: &policy.OverlayConfig{Rules: map[string]string{"write.*": "allow"}}, Reason: "r"}, "roles only"},
		{"unknown role", alice, AccessInput{Connection: "prod", Role: "god", Reason: "r"}, "not offered"},
		{"neither", alice, AccessInput{Connection: "prod", Reason: "r"}, "ask for a role"},
		{"both", alice, AccessInput{Connection: "prod", Role: "writer", Overlay: &policy.OverlayConfig{Risks: map[string]string{"high": "allow"}}, Reason: "r"}, "not both"},
		{"critical", alice, AccessInput{Connection: "prod", Overlay: &policy.OverlayConfig{Rules: map[string]string{"reach.*": "allow"}}, Reason: "r"}, "critical risk cannot be lifted"},
		{"too long", alice, AccessInput{Connection: "prod", Role: "writer", Duration: Duration(5 * time.Hour), Reason: "r"}, "out of range"},
		{"no reason", alice, AccessInput{Connection: "prod", Role: "writer"}, "reason is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.RequestAccess(ctx, tc.who, tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if accessStatus(err) != http.StatusBadRequest {
				t.Errorf("status %d for %v", accessStatus(err), err)
			}
		})
	}
	// Roles a connection names must exist.
	_, err := Open(ctx, Options{Config: cfg, Store: st, Allowed: map[string]protocols.Principals{},
		Connections: map[string]ConnectionConfig{"prod": {Access: &ConnectionAccess{Roles: []string{"nope"}}}}})
	if err == nil || !strings.Contains(err.Error(), `connections[prod].approvals.access.roles[0]: unknown role "nope"`) {
		t.Fatalf("unknown role in a connection: %v", err)
	}
}

// TestAccessGrantSurvivesRestartAndCrossesReplicas: a grant is read from
// the store when a service opens, and a grant made through one replica
// reaches another's view through LISTEN/NOTIFY, both polling once an hour.
func TestAccessGrantSurvivesRestartAndCrossesReplicas(t *testing.T) {
	db := testenv.PostgresDB(t)
	dsn := testenv.PostgresURL(t, db)
	open := func() *SQLStore {
		return openTestStore(t, sqldb.Config{Driver: "postgres", DSN: protocols.Secret(dsn)})
	}
	ctx := context.Background()
	a, _ := newService(t, open(), accessConfig(), withReplica("replica-a"), withAllowed)
	b, _ := newService(t, open(), accessConfig(), withReplica("replica-b"), withAllowed)
	waitListeners(t, dsn, 2)
	r, err := a.RequestAccess(ctx, alice, AccessInput{Connection: "prod", Role: "writer", Reason: "r"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.DecideAccess(ctx, bob, r.ID, Approve, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the grant on replica b", func() bool { return b.Grants().Lookup("prod", "alice", time.Now()) != nil })
	c, _ := newService(t, open(), accessConfig(), withReplica("replica-c"), withAllowed)
	if c.Grants().Lookup("prod", "alice", time.Now()) == nil {
		t.Fatal("a new process does not see the grant from its start")
	}
	if _, err := b.RevokeAccess(ctx, alice, r.ID, "done"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the revocation on replica a", func() bool { return a.Grants().Lookup("prod", "alice", time.Now()) == nil })
	waitFor(t, "the revocation on replica c", func() bool { return c.Grants().Lookup("prod", "alice", time.Now()) == nil })
	// Uses are noted in the background, once per session.
	g := &protocols.AccessGrant{ID: r.ID}
	a.Grants().Used(g, protocols.SessionInfo{ID: "s1"})
	a.Grants().Used(g, protocols.SessionInfo{ID: "s1"})
	waitFor(t, "the use", func() bool {
		uses, err := open().GrantUses(ctx, []string{"s1", "s2"})
		return err == nil && len(uses["s1"]) == 1 && uses["s1"][0] == r.ID
	})
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAccessAPI(t *testing.T) {
	st := openTestStore(t, sqldb.Config{DSN: protocols.Secret(t.TempDir() + "/a.db")})
	s, _ := newService(t, st, accessConfig(), withAllowed)
	h := s.Handler(testAuth)
	call := func(token, method, path, body string) (int, map[string]any) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var out map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		return rec.Code, out
	}
	code, got := call("tok-alice", "POST", "/api/access", `{"connection":"prod","overlay":{"rules":{"write.*":"allow"}},"duration":"30m","reason":"backfill"}`)
	if code != http.StatusCreated || got["status"] != "pending" || got["duration"] != "30m0s" {
		t.Fatalf("request: %d %v", code, got)
	}
	id := got["id"].(string)
	if code, _ := call("tok-alice", "POST", "/api/access", `{"connection":"prod","role":"writer","reason":"again"}`); code != http.StatusConflict {
		t.Fatalf("second request: %d", code)
	}
	if code, _ := call("tok-alice", "POST", "/api/access", `{"connection":"prod","role":"writer","reason":"x","extra":1}`); code != http.StatusBadRequest {
		t.Fatalf("unknown field: %d", code)
	}
	if code, _ := call("", "GET", "/api/access", ""); code != http.StatusUnauthorized {
		t.Fatalf("anonymous list: %d", code)
	}
	if code, _ := call("tok-eve", "GET", "/api/access/"+id, ""); code != http.StatusForbidden {
		t.Fatalf("bystander get: %d", code)
	}
	if code, got := call("tok-bob", "POST", "/api/access/"+id+"/approve", `{"reason":"fine"}`); code != http.StatusOK || got["status"] != "active" {
		t.Fatalf("approve: %d %v", code, got)
	}
	code, got = call("tok-alice", "GET", "/api/access?status=active", "")
	if list, _ := got["access"].([]any); code != http.StatusOK || len(list) != 1 {
		t.Fatalf("list: %d %v", code, got)
	}
	if code, got := call("tok-alice", "POST", "/api/access/"+id+"/revoke", ""); code != http.StatusOK || got["status"] != "revoked" {
		t.Fatalf("revoke: %d %v", code, got)
	}
	// The page lists it for a reviewer.
	req := httptest.NewRequest("GET", "/access", nil)
	req.Header.Set("Authorization", "Bearer tok-bob")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`id="access-recent-`+id+`"`)) {
		t.Fatalf("page: %d\n%s", rec.Code, rec.Body.String())
	}
}

func TestAccessWebhooks(t *testing.T) {
	ctx := context.Background()
	rcv := newReceiver(t, 0, 0)
	slack := newReceiver(t, 0, 0)
	cfg := accessConfig()
	cfg.Webhooks = []WebhookConfig{{URL: protocols.Secret(rcv.srv.URL)}, {URL: protocols.Secret(slack.srv.URL), Format: FormatSlack}}
	s, _ := newService(t, openTestStore(t, sqldb.Config{DSN: protocols.Secret(t.TempDir() + "/a.db")}), cfg, withAllowed)
	r, err := s.RequestAccess(ctx, alice, AccessInput{Connection: "prod", Role: "writer", Reason: "release <3>"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DecideAccess(ctx, bob, r.ID, Approve, ""); err != nil {
		t.Fatal(err)
	}
	// Workers deliver in parallel: events may arrive in any order.
	events := map[string]AccessWebhookEvent{}
	for _, x := range rcv.wait(t, 2) {
		var ev AccessWebhookEvent
		if err := json.Unmarshal(x.body, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Access.ID != r.ID || ev.URL != "https://airlock.example:19090/access/"+r.ID || x.header.Get("X-Airlock-Event") != ev.Event {
			t.Fatalf("event %+v", ev)
		}
		events[ev.Event] = ev
	}
	if ev := events["access.requested"]; ev.Access == nil || ev.Access.Status != AccessPending {
		t.Fatalf("requested event %+v", ev)
	}
	if ev := events["access.approved"]; ev.Access == nil || ev.Access.Status != AccessActive || ev.Access.EndsAt.IsZero() {
		t.Fatalf("approved event %+v", ev)
	}
	var texts []string
	for _, x := range slack.wait(t, 2) {
		var m map[string]string
		_ = json.Unmarshal(x.body, &m)
		texts = append(texts, m["text"])
	}
	all := strings.Join(texts, "\n---\n")
	if !strings.Contains(all, "release &lt;3&gt;") || !strings.Contains(all, "airlock access approve "+r.ID) || !strings.Contains(all, "granted") {
		t.Fatalf("slack texts:\n%s", all)
	}
}
