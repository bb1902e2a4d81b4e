package approvals

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session/sqldb"
)

// TestSingleSignOnSignIn: the sign-in page offers the providers beside
// the token form; a completed single sign-on keeps its credential in the
// page's cookie like a posted token; signing out hands the credential back
// to be revoked.
func TestSingleSignOnSignIn(t *testing.T) {
	st := openTestStore(t, sqldb.Config{DSN: protocols.Secret(t.TempDir() + "/a.db")})
	cfg := testConfig()
	cfg.AdminURL = "http://127.0.0.1:19090"
	s, _ := newService(t, st, cfg)
	var signedOut []string
	mux := http.NewServeMux()
	s.MountWithSignIn(mux, testAuth, SignIn{
		Providers: []SignInProvider{{Name: "okta", Label: "Okta", Path: "/sso/okta/login"}},
		SignOut:   func(_ context.Context, token string) { signedOut = append(signedOut, token) },
	})
	// The provider's callback, as the sso package completes it.
	mux.HandleFunc("GET /sso/okta/callback", func(w http.ResponseWriter, r *http.Request) {
		s.SignedIn(w, r, "tok-alice", r.URL.Query().Get("next"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	b := newBrowser(t, srv)

	code, body := b.do("GET", "/approvals/login?next=/approvals/abc", nil, nil)
	if code != 200 || !strings.Contains(body, `id="sso-okta" href="/sso/okta/login?next=%2Fapprovals%2Fabc"`) ||
		!strings.Contains(body, `id="token"`) {
		t.Fatalf("sign-in page: %d\n%s", code, body)
	}
	code, _ = b.do("GET", "/sso/okta/callback?next="+url.QueryEscape("//evil.example/x"), nil, nil)
	if code != http.StatusSeeOther || b.last.Header.Get("Location") != "/approvals" {
		t.Fatalf("after sign-in: %d to %q", code, b.last.Header.Get("Location"))
	}
	ck := b.last.Cookies()
	if len(ck) != 1 || ck[0].Name != cookiePlain || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie %+v", ck)
	}
	code, body = b.do("GET", "/approvals", nil, nil)
	if code != 200 || !strings.Contains(body, "Signed in as <b>alice</b>") {
		t.Fatalf("page: %d\n%s", code, body)
	}
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no CSRF token")
	}
	// Signing out without the CSRF token is refused and revokes nothing.
	if code, _ := b.do("POST", "/approvals/logout", url.Values{}, nil); code != http.StatusForbidden || len(signedOut) != 0 {
		t.Fatalf("logout without CSRF: %d, revoked %q", code, signedOut)
	}
	if code, _ := b.do("POST", "/approvals/logout", url.Values{"csrf": {m[1]}}, nil); code != http.StatusSeeOther {
		t.Fatalf("logout: %d", code)
	}
	if len(signedOut) != 1 || signedOut[0] != "tok-alice" {
		t.Fatalf("signed out %q", signedOut)
	}
}
