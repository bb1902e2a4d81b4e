package approvals

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session/identity"
	"github.com/airlock-gw/airlock/session/sqldb"
)

// fakeAuth maps tokens to identities, as the identity package would.
type fakeAuth map[string]protocols.Identity

func (f fakeAuth) Authenticate(ctx context.Context, name, secret string) (protocols.Identity, error) {
	if secret == "tok-idp-down" {
		return protocols.Identity{}, fmt.Errorf("%w: %w", protocols.ErrAuthFailed, identity.ErrUnavailable)
	}
	id, ok := f[secret]
	if !ok || (name != "" && name != id.Name) {
		return protocols.Identity{}, protocols.ErrAuthFailed
	}
	return id, nil
}

var testAuth = fakeAuth{"tok-alice": alice, "tok-bob": bob, "tok-carol": carol, "tok-eve": eve, "tok-dave": dave}

// apiFixture is a retry-mode service behind an httptest server.
type apiFixture struct {
	s   *Service
	srv *httptest.Server
	c   *clock
}

func newAPIFixture(t *testing.T) *apiFixture {
	t.Helper()
	st := openTestStore(t, sqldb.Config{DSN: protocols.Secret(t.TempDir() + "/a.db")})
	cfg := testConfig()
	cfg.Mode = ModeRetry
	c := newClock()
	s, _ := newService(t, st, cfg, withClock(c), withConns(map[string]ConnectionConfig{"two": {Required: 2}}))
	srv := httptest.NewServer(s.Handler(testAuth))
	t.Cleanup(srv.Close)
	return &apiFixture{s: s, srv: srv, c: c}
}

// request makes a pending request for who and returns its id.
func (f *apiFixture) request(t *testing.T, who protocols.Identity, conn, text string) string {
	t.Helper()
	d, err := f.s.Review(context.Background(), review(who, conn, text), nil)
	if err != nil || d.ApprovalID == "" {
		t.Fatalf("review: %+v %v", d, err)
	}
	return d.ApprovalID
}

type call struct {
	method, path, token, body string
	header                    map[string]string
}

func (f *apiFixture) do(t *testing.T, c call) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(c.method, f.srv.URL+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestAPIStatusCodes(t *testing.T) {
	f := newAPIFixture(t)
	expiring := f.request(t, alice, "prod", "DROP TABLE c")
	f.c.Add(DefaultTimeout) // expiring is now out of time, not yet swept
	pending := f.request(t, alice, "prod", "DROP TABLE a")
	decided := f.request(t, alice, "prod", "DROP TABLE b")
	if _, err := f.s.Decide(context.Background(), bob, decided, Reject, "no"); err != nil {
		t.Fatal(err)
	}
	twoOf := f.request(t, alice, "two", "DROP TABLE d")
	evesOwn := f.request(t, eve, "prod", "DROP TABLE e")
	unknown := newID()

	for _, tc := range []struct {
		name string
		call call
		want int
		says string
	}{
		{"unauthenticated list", call{method: "GET", path: "/api/approvals"}, 401, "authentication required"},
		{"wrong token", call{method: "GET", path: "/api/approvals", token: "nope"}, 401, "authentication failed"},
		{"basic auth", call{method: "GET", path: "/api/approvals", header: map[string]string{"Authorization": "Basic Ym9iOnRvay1ib2I="}}, 401, ""},
		{"token in the URL is ignored", call{method: "GET", path: "/api/approvals?token=tok-bob&access_token=tok-bob"}, 401, ""},
		{"identity provider down", call{method: "GET", path: "/api/approvals", token: "tok-idp-down"}, 503, "unavailable"},
		{"list", call{method: "GET", path: "/api/approvals?status=pending", token: "tok-bob"}, 200, pending},
		{"unknown status", call{method: "GET", path: "/api/approvals?status=maybe", token: "tok-bob"}, 400, "unknown status"},
		{"bad limit", call{method: "GET", path: "/api/approvals?limit=0", token: "tok-bob"}, 400, "limit"},
		{"get", call{method: "GET", path: "/api/approvals/" + pending, token: "tok-bob"}, 200, `"status": "pending"`},
		{"get unknown", call{method: "GET", path: "/api/approvals/" + unknown, token: "tok-bob"}, 404, "not found"},
		{"get malformed id", call{method: "GET", path: "/api/approvals/..%2f..", token: "tok-bob"}, 404, ""},
		{"get by a stranger", call{method: "GET", path: "/api/approvals/" + pending, token: "tok-eve"}, 403, "may not see"},
		{"get own request", call{method: "GET", path: "/api/approvals/" + evesOwn, token: "tok-eve"}, 200, evesOwn},
		{"approve by non-reviewer", call{method: "POST", path: "/api/approvals/" + pending + "/approve", token: "tok-eve", body: `{}`}, 403, "not a reviewer"},
		{"self approval", call{method: "POST", path: "/api/approvals/" + pending + "/approve", token: "tok-alice", body: `{}`}, 403, "not a reviewer"},
		{"malformed JSON", call{method: "POST", path: "/api/approvals/" + pending + "/approve", token: "tok-bob", body: `{"reason":`}, 400, "malformed JSON"},
		{"unknown field", call{method: "POST", path: "/api/approvals/" + pending + "/approve", token: "tok-bob", body: `{"reason":"x","force":true}`}, 400, "malformed JSON"},
		{"trailing data", call{method: "POST", path: "/api/approvals/" + pending + "/approve", token: "tok-bob", body: `{"reason":"x"} {}`}, 400, "trailing"},
		{"wrong type", call{method: "POST", path: "/api/approvals/" + pending + "/approve", token: "tok-bob", body: `{"reason":42}`}, 400, "malformed JSON"},
		{"not JSON content type", call{method: "POST", path: "/api/approvals/" + pending + "/approve", token: "tok-bob", body: `reason=x`, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 400, "content type"},
		{"deny without reason", call{method: "POST", path: "/api/approvals/" + pending + "/deny", token: "tok-bob", body: `{"reason":"  "}`}, 400, "needs a reason"},
		{"deny with empty body", call{method: "POST", path: "/api/approvals/" + pending + "/deny", token: "tok-bob"}, 400, "needs a reason"},
		{"approve unknown", call{method: "POST", path: "/api/approvals/" + unknown + "/approve", token: "tok-bob", body: `{}`}, 404, "not found"},
		{"approve decided", call{method: "POST", path: "/api/approvals/" + decided + "/approve", token: "tok-bob", body: `{}`}, 409, "already denied"},
		{"approve expired", call{method: "POST", path: "/api/approvals/" + expiring + "/approve", token: "tok-bob", body: `{}`}, 409, "has expired"},
		{"wrong method", call{method: "GET", path: "/api/approvals/" + pending + "/approve", token: "tok-bob"}, 405, ""},
		{"cross-site post", call{method: "POST", path: "/api/approvals/" + pending + "/approve", token: "tok-bob", body: `{}`, header: map[string]string{"Sec-Fetch-Site": "cross-site"}}, 403, "cross-origin"},
		{"first of two approvals", call{method: "POST", path: "/api/approvals/" + twoOf + "/approve", token: "tok-bob", body: `{"reason":"one"}`}, 200, `"status": "pending"`},
		{"same reviewer again", call{method: "POST", path: "/api/approvals/" + twoOf + "/approve", token: "tok-bob", body: `{}`}, 409, "already chose approve"},
		{"approve", call{method: "POST", path: "/api/approvals/" + pending + "/approve", token: "tok-bob", body: `{"reason":"ok"}`}, 200, `"status": "approved"`},
		{"approve again", call{method: "POST", path: "/api/approvals/" + pending + "/approve", token: "tok-carol", body: `{}`}, 409, "already approved"},
		{"deny approved", call{method: "POST", path: "/api/approvals/" + pending + "/deny", token: "tok-carol", body: `{"reason":"late"}`}, 409, "already approved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before *Request
			if strings.HasPrefix(tc.call.path, "/api/approvals/") && tc.call.method == "POST" && tc.want != 200 {
				id := strings.Split(strings.TrimPrefix(tc.call.path, "/api/approvals/"), "/")[0]
				before, _ = f.s.store.Get(context.Background(), id)
			}
			code, body, h := f.do(t, tc.call)
			if code != tc.want || !strings.Contains(body, tc.says) {
				t.Fatalf("got %d %s, want %d containing %q", code, body, tc.want, tc.says)
			}
			if h.Get("Content-Type") != "application/json" && code != 405 {
				t.Fatalf("content type %q", h.Get("Content-Type"))
			}
			if code == 401 && h.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without a challenge")
			}
			if code >= 400 && code != 405 {
				var e apiError
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
					t.Fatalf("error body %q", body)
				}
			}
			if before != nil {
				after, _ := f.s.store.Get(context.Background(), before.ID)
				// A vote that finds the request out of time records it as
				// expired, which it already was; it never adds a decision.
				sameState := after.Status == before.Status || (after.Status == StatusExpired && tc.name == "approve expired")
				if !sameState || len(after.Decisions) != len(before.Decisions) {
					t.Fatalf("a refused call changed the request: %s/%d -> %s/%d", before.Status, len(before.Decisions), after.Status, len(after.Decisions))
				}
			}
		})
	}

	t.Run("list shows only what the caller may see", func(t *testing.T) {
		_, body, _ := f.do(t, call{method: "GET", path: "/api/approvals", token: "tok-eve"})
		var l listResponse
		if err := json.Unmarshal([]byte(body), &l); err != nil {
			t.Fatal(err)
		}
		if len(l.Approvals) == 0 {
			t.Fatal("eve sees nothing")
		}
		for _, r := range l.Approvals {
			if r.Identity.Name != "eve" {
				t.Fatalf("eve sees %s's request", r.Identity.Name)
			}
		}
	})

	t.Run("approved command then runs once", func(t *testing.T) {
		d, _ := f.s.Review(context.Background(), review(alice, "prod", "DROP TABLE a"), nil)
		if d.Action != protocols.Allow || d.ApprovalID != pending {
			t.Fatalf("%+v", d)
		}
	})
}

func TestAPICookieNeedsCSRF(t *testing.T) {
	f := newAPIFixture(t)
	id := f.request(t, alice, "prod", "DROP TABLE a")
	ck := encodeCookie("tok-bob")
	post := func(h map[string]string) int {
		req, _ := http.NewRequest("POST", f.srv.URL+"/api/approvals/"+id+"/approve", strings.NewReader(`{}`))
		req.AddCookie(&http.Cookie{Name: cookiePlain, Value: ck})
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := post(nil); c != 403 {
		t.Fatalf("cookie without CSRF token: %d", c)
	}
	if c := post(map[string]string{csrfHeader: csrfToken(encodeCookie("tok-carol"))}); c != 403 {
		t.Fatalf("cookie with another cookie's CSRF token: %d", c)
	}
	if r, _ := f.s.store.Get(context.Background(), id); r.Status != StatusPending {
		t.Fatal("refused call changed the request")
	}
	if c := post(map[string]string{csrfHeader: csrfToken(ck)}); c != 200 {
		t.Fatalf("cookie with CSRF token: %d", c)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                           "/approvals",
		"/approvals":                 "/approvals",
		"/approvals/abc":             "/approvals/abc",
		"/approvals?done=x":          "/approvals?done=x",
		"//evil.example/approvals":   "/approvals",
		"https://evil.example/":      "/approvals",
		"/\\evil.example":            "/approvals",
		"/metrics":                   "/approvals",
		"/approvals/../metrics":      "/approvals",
		"/approvalsX":                "/approvals",
		"/approvals/login":           "/approvals",
		"javascript:alert(1)":        "/approvals",
		"/approvals/x\r\nSet-Cookie": "/approvals",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCookieCodec(t *testing.T) {
	for _, tok := range []string{"tok-bob", "a;b,c\"d", strings.Repeat("x", maxTokenBytes)} {
		got, ok := decodeCookie(encodeCookie(tok))
		if !ok || got != tok {
			t.Fatalf("round trip of %q: %q %v", tok, got, ok)
		}
	}
	for _, bad := range []string{"", "!!", encodeCookie("has space"), encodeCookie(strings.Repeat("x", maxTokenBytes+1)), encodeCookie("x") + "="} {
		if _, ok := decodeCookie(bad); ok {
			t.Fatalf("accepted %q", bad)
		}
	}
}
