package sso

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session/identity"
	"github.com/airlock-gw/airlock/session/identity/sso/ssotest"
)

const (
	adminToken = "admin-token"
	password   = "correct horse"
)

var users = []ssotest.User{
	{Name: "alice@corp", Password: password, Groups: []string{"developers", "reviewers"}},
	{Name: "bob@corp", Password: password, Groups: []string{"contractors"}},
	{Name: "admin", Password: password}, // a static identity's name
}

// harness is a Service on an httptest server (the admin listener) with
// both kinds of identity provider running in the test's process.
type harness struct {
	t       *testing.T
	base    string
	svc     *Service
	store   *Store
	auth    *identity.Authenticator
	clock   *clockwork.FakeClock
	oidc    *ssotest.OIDC
	saml    *ssotest.SAML
	capture string // a redirect URI that only shows the code it gets

	mu       sync.Mutex
	signedIn []signIn
}

type signIn struct{ token, next string }

func newHarness(t *testing.T, mod ...func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, clock: clockwork.NewFakeClockAt(time.Now())}
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	capture := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "code="+r.URL.Query().Get("code"))
	}))
	t.Cleanup(capture.Close)
	h.base, h.capture = srv.URL, capture.URL+"/cb"
	h.oidc = ssotest.NewOIDC(t, users,
		ssotest.Client{ID: "airlock", Secret: "airlock-secret", RedirectURIs: []string{h.base + "/sso/okta/callback", h.capture}},
		ssotest.Client{ID: "other-app", Secret: "other-secret", RedirectURIs: []string{h.capture}})
	h.saml = ssotest.NewSAML(t, users)
	cfg := Config{BaseURL: h.base, Admins: []string{"admin"}, Providers: []Provider{
		{Name: "okta", Label: "Okta", Type: TypeOIDC, Issuer: h.oidc.Issuer, ClientID: "airlock", ClientSecret: "airlock-secret",
			Scopes: []string{"openid", "profile", "email"}, GroupPrefix: "okta:"},
		{Name: "corp", Label: "Corp SAML", Type: TypeSAML, MetadataURL: h.saml.MetadataURL, GroupsClaim: "eduPersonAffiliation"},
	}}
	for _, m := range mod {
		m(&cfg)
	}
	cfg = cfg.WithDefaults("")
	db := openDB(t, "sqlite")
	metrics := NewMetrics(nil)
	st, err := OpenStore(context.Background(), db, StoreOptions{Grace: cfg.Grace, Poll: time.Hour, Now: h.clock.Now, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := identity.New(identity.Config{Identities: []identity.Static{
		{Name: "admin", TokenSHA256: identity.HashToken(adminToken)}}}, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	auth.SetCredentials(st)
	h.store, h.auth = st, auth
	h.svc, err = New(Options{Config: cfg, Store: st, Auth: auth, IsStatic: auth.IsStatic, Metrics: metrics,
		SignIn: func(w http.ResponseWriter, r *http.Request, token, next string) {
			h.mu.Lock()
			h.signedIn = append(h.signedIn, signIn{token, next})
			h.mu.Unlock()
			fmt.Fprint(w, "signed in")
		},
		Connections: map[string]*protocols.Connection{
			"main":   {Name: "main", Protocol: protocols.Postgres, Allow: protocols.Principals{"group:okta:developers"}},
			"shop":   {Name: "shop", Protocol: protocols.MySQL, Allow: protocols.Principals{"*"}},
			"secret": {Name: "secret", Protocol: protocols.Postgres, Allow: protocols.Principals{"carol"}},
		},
		Listeners: map[string]string{"postgres": "0.0.0.0:15432", "mysql": "127.0.0.1:13306", "agent": ":18080"},
		clock:     h.clock})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.svc.Mount(mux)
	handler = mux
	h.saml.RegisterSP(t, "airlock", h.base+"/sso/corp/metadata")
	return h
}

// lastSignIn is the reviewers' page sign-in the Service completed last.
func (h *harness) lastSignIn() signIn {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.signedIn) == 0 {
		h.t.Fatal("no sign-in completed")
	}
	return h.signedIn[len(h.signedIn)-1]
}

// browser is an HTTP client with cookies that does not follow redirects to
// a CLI's loopback listener.
func browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Path == "/callback" && strings.HasPrefix(via[len(via)-1].URL.Path, "/sso/") {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

type webPage struct {
	url      *url.URL
	status   int
	body     string
	location string
}

func get(t *testing.T, c *http.Client, u string) webPage {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return read(t, resp)
}

func post(t *testing.T, c *http.Client, u string, form url.Values) webPage {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	return read(t, resp)
}

func read(t *testing.T, resp *http.Response) webPage {
	t.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return webPage{url: resp.Request.URL, status: resp.StatusCode, body: string(b), location: resp.Header.Get("Location")}
}

var (
	formRE  = regexp.MustCompile(`(?s)<form[^>]*action="([^"]*)"`)
	inputRE = regexp.MustCompile(`<input[^>]*name="([^"]*)"[^>]*value="([^"]*)"`)
)

// form reads the first form of p: its absolute action and hidden values.
func (p webPage) form(t *testing.T) (string, url.Values) {
	t.Helper()
	m := formRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no form at %s (%d):\n%s", p.url, p.status, p.body)
	}
	action, err := p.url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	v := url.Values{}
	for _, in := range inputRE.FindAllStringSubmatch(p.body, -1) {
		v.Set(in[1], html.UnescapeString(in[2]))
	}
	return action.String(), v
}

// oidcLogin signs user in at the OpenID provider's login page p.
func oidcLogin(t *testing.T, c *http.Client, p webPage, user string) webPage {
	t.Helper()
	action, v := p.form(t)
	v.Set("username", user)
	v.Set("password", password)
	return post(t, c, action, v)
}

// samlLogin signs user in at the SAML login page p and returns the
// identity provider's answer: the form that posts to the ACS.
func samlLogin(t *testing.T, c *http.Client, p webPage, user string) (string, url.Values) {
	t.Helper()
	action, v := p.form(t)
	v.Set("user", user)
	v.Set("password", password)
	answer := post(t, c, action, v)
	acs, resp := answer.form(t)
	if resp.Get("SAMLResponse") == "" {
		t.Fatalf("no SAML response:\n%s", answer.body)
	}
	return acs, resp
}
