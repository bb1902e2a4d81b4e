package approvals

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session/sqldb"
)

// webFixture serves the page over plain http on loopback, as a local
// admin listener would.
func newWebFixture(t *testing.T, mode Mode) (*Service, *httptest.Server) {
	t.Helper()
	st := openTestStore(t, sqldb.Config{DSN: protocols.Secret(t.TempDir() + "/a.db")})
	cfg := testConfig()
	cfg.Mode = mode
	cfg.AdminURL = "http://127.0.0.1:19090"
	s, _ := newService(t, st, cfg, withPoll(50e6))
	srv := httptest.NewServer(s.Handler(testAuth))
	t.Cleanup(srv.Close)
	return s, srv
}

type browser struct {
	t    *testing.T
	srv  *httptest.Server
	c    *http.Client
	last *http.Response
}

func newBrowser(t *testing.T, srv *httptest.Server) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, srv: srv, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(method, path string, form url.Values, hdr map[string]string) (int, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, b.srv.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	b.last = resp
	return resp.StatusCode, string(out)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func TestWebPage(t *testing.T) {
	s, srv := newWebFixture(t, ModeRetry)
	ctx := context.Background()
	evil := `<script>alert(1)</script><img src=x onerror=alert(2)>`
	d, _ := s.Review(ctx, review(alice, "prod", evil), nil)
	id := d.ApprovalID
	b := newBrowser(t, srv)

	code, _ := b.do("GET", "/approvals", nil, nil)
	if code != http.StatusSeeOther || b.last.Header.Get("Location") != "/approvals/login?next=%2Fapprovals" {
		t.Fatalf("anonymous page: %d %s", code, b.last.Header.Get("Location"))
	}
	code, page := b.do("GET", "/approvals/login?next=/approvals/"+id, nil, nil)
	if code != 200 || !strings.Contains(page, `name="token"`) || !strings.Contains(page, `value="/approvals/`+id+`"`) {
		t.Fatalf("login form: %d", code)
	}
	csp := b.last.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'nonce-") || !strings.Contains(csp, "frame-ancestors 'none'") || b.last.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("headers: %v", b.last.Header)
	}

	code, page = b.do("POST", "/approvals/login", url.Values{"token": {"wrong"}, "next": {"/approvals"}}, nil)
	if code != 401 || !strings.Contains(page, "Authentication failed") || len(b.last.Cookies()) != 0 {
		t.Fatalf("bad login: %d", code)
	}
	code, _ = b.do("POST", "/approvals/login", url.Values{"token": {"tok-bob"}}, map[string]string{"Sec-Fetch-Site": "cross-site"})
	if code != 403 {
		t.Fatalf("cross-site login: %d", code)
	}
	code, _ = b.do("POST", "/approvals/login", url.Values{"token": {"tok-bob"}, "next": {"https://evil.example/"}}, nil)
	if code != 303 || b.last.Header.Get("Location") != "/approvals" {
		t.Fatalf("login: %d to %s", code, b.last.Header.Get("Location"))
	}
	ck := b.last.Cookies()
	if len(ck) != 1 || ck[0].Name != cookiePlain || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode || ck[0].Path != "/" ||
		strings.Contains(ck[0].Value, "tok-bob") {
		t.Fatalf("cookie %+v", ck)
	}

	code, page = b.do("GET", "/approvals", nil, nil)
	if code != 200 || !strings.Contains(page, `id="approve-`+id+`"`) || !strings.Contains(page, `id="deny-`+id+`"`) {
		t.Fatalf("list page: %d\n%s", code, page)
	}
	if strings.Contains(page, "<script>alert") || strings.Contains(page, "<img src=x") || !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatal("the command was not escaped")
	}
	nonce := regexp.MustCompile(`<script nonce="([^"]+)"`).FindStringSubmatch(page)
	if nonce == nil || !strings.Contains(b.last.Header.Get("Content-Security-Policy"), "'nonce-"+nonce[1]+"'") {
		t.Fatal("the script's nonce is not the CSP's")
	}
	csrf := csrfRE.FindStringSubmatch(page)[1]

	code, frag := b.do("GET", "/approvals/live", nil, nil)
	if code != 200 || !strings.Contains(frag, "req-"+id) || strings.Contains(frag, "<html") {
		t.Fatalf("live fragment: %d", code)
	}
	if code, _ := b.do("GET", "/approvals/"+id, nil, nil); code != 200 {
		t.Fatalf("detail: %d", code)
	}
	if code, page := b.do("GET", "/approvals/"+newID(), nil, nil); code != 404 || !strings.Contains(page, "No such approval request") {
		t.Fatalf("unknown detail: %d", code)
	}

	if code, _ := b.do("POST", "/approvals/"+id+"/approve", url.Values{"reason": {"x"}}, nil); code != 403 {
		t.Fatalf("form without CSRF token: %d", code)
	}
	if code, _ := b.do("POST", "/approvals/"+id+"/approve", url.Values{"csrf": {csrfToken(encodeCookie("tok-carol"))}}, nil); code != 403 {
		t.Fatalf("form with a foreign CSRF token: %d", code)
	}
	if code, _ := b.do("POST", "/approvals/"+id+"/deny", url.Values{"csrf": {csrf}, "reason": {""}}, nil); code != 400 {
		t.Fatalf("deny without reason: %d", code)
	}
	if r, _ := s.store.Get(ctx, id); r.Status != StatusPending || len(r.Decisions) != 0 {
		t.Fatal("a refused form changed the request")
	}
	code, _ = b.do("POST", "/approvals/"+id+"/approve", url.Values{"csrf": {csrf}, "reason": {"ok"}}, nil)
	if code != 303 || b.last.Header.Get("Location") != "/approvals?done=approved&id="+id {
		t.Fatalf("approve: %d %s", code, b.last.Header.Get("Location"))
	}
	code, page = b.do("GET", "/approvals?done=approved&id="+id, nil, nil)
	if code != 200 || !strings.Contains(page, "Approved request "+id) || !strings.Contains(page, `id="recent-`+id+`"`) {
		t.Fatalf("after approve: %d", code)
	}
	if code, page := b.do("POST", "/approvals/"+id+"/approve", url.Values{"csrf": {csrf}}, nil); code != 409 || !strings.Contains(page, "already approved") {
		t.Fatalf("approve twice: %d", code)
	}

	if code, _ := b.do("POST", "/approvals/logout", url.Values{}, nil); code != 403 {
		t.Fatalf("logout without CSRF token: %d", code)
	}
	if code, _ := b.do("POST", "/approvals/logout", url.Values{"csrf": {csrf}}, nil); code != 303 {
		t.Fatalf("logout: %d", code)
	}
	if code, _ := b.do("GET", "/approvals", nil, nil); code != 303 {
		t.Fatalf("after logout: %d", code)
	}
}

func TestWebSecureCookie(t *testing.T) {
	st := openTestStore(t, sqldb.Config{DSN: protocols.Secret(t.TempDir() + "/a.db")})
	s, _ := newService(t, st, testConfig()) // admin URL is https
	srv := httptest.NewServer(s.Handler(testAuth))
	defer srv.Close()
	b := newBrowser(t, srv)
	b.do("POST", "/approvals/login", url.Values{"token": {"tok-bob"}}, nil)
	ck := b.last.Header.Get("Set-Cookie")
	if !strings.HasPrefix(ck, cookieSecure+"=") || !strings.Contains(ck, "Secure") || !strings.Contains(ck, "HttpOnly") ||
		!strings.Contains(ck, "SameSite=Strict") || strings.Contains(ck, "Domain") {
		t.Fatalf("Set-Cookie %q", ck)
	}
	// A cookie whose token no longer authenticates sends the browser back
	// to the login form and is cleared.
	req, _ := http.NewRequest("GET", srv.URL+"/approvals", nil)
	req.AddCookie(&http.Cookie{Name: cookiePlain, Value: encodeCookie("revoked")})
	resp, err := newBrowser(t, srv).c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 303 || len(resp.Cookies()) == 0 || resp.Cookies()[0].MaxAge >= 0 {
		t.Fatalf("revoked cookie: %d %v", resp.StatusCode, resp.Cookies())
	}
}
