package sso

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestFlows runs the sign-in flows against one pair of identity providers
// and one Airlock admin listener.
func TestFlows(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name string
		run  func(*testing.T, *harness)
	}{
		{"oidc sign-in", testOIDCSignIn}, {"oidc refusals", testOIDCRefusals}, {"other browser", testSignInOtherBrowser},
		{"saml sign-in", testSAMLSignIn}, {"cli sign-in", testCLISignIn}, {"static name", testStaticNameRefused},
		{"device", testDevice}, {"api", testAPI},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, h) })
	}
}

// testOIDCSignIn signs in to the reviewers' page with the authorization
// code flow and PKCE, and refuses the answer replayed.
func testOIDCSignIn(t *testing.T, h *harness) {
	b := browser()
	login := get(t, b, h.base+"/sso/okta/login?next=/approvals/42")
	if !strings.HasPrefix(login.url.String(), h.oidc.Issuer) {
		t.Fatalf("not at the identity provider: %s", login.url)
	}
	var callback string
	b.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Path == "/sso/okta/callback" {
			callback = req.URL.String()
			q := req.URL.Query()
			if q.Get("code") == "" || q.Get("state") == "" {
				t.Errorf("callback without code or state: %s", req.URL)
			}
		}
		return nil
	}
	done := oidcLogin(t, b, login, "alice@corp")
	if done.status != http.StatusOK || done.body != "signed in" {
		t.Fatalf("sign-in ended at %s (%d):\n%s", done.url, done.status, done.body)
	}
	si := h.lastSignIn()
	if si.next != "/approvals/42" {
		t.Errorf("next = %q", si.next)
	}
	id, err := h.auth.Authenticate(context.Background(), "alice@corp", si.token)
	if err != nil || id.Method != "sso:okta" || !slices.Equal(id.Groups, []string{"okta:developers", "okta:reviewers"}) {
		t.Fatalf("the page's credential: %+v, %v", id, err)
	}
	creds, _ := h.store.List(context.Background(), "alice@corp", false)
	if len(creds) == 0 || creds[0].Purpose != PurposeWeb {
		t.Fatalf("credentials %+v", creds)
	}
	// The same answer again: the state was taken.
	again := get(t, b, callback)
	if again.status != http.StatusBadRequest || !strings.Contains(again.body, "completed already") {
		t.Fatalf("replayed callback: %d\n%s", again.status, again.body)
	}
}

// testOIDCRefusals: the ID tokens a real provider issues, checked by the
// client as it checks them in the callback.
func testOIDCRefusals(t *testing.T, h *harness) {
	p := h.svc.byName["okta"].oidc
	d, err := p.discovered(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	token := func(clientID, secret, nonce string) *oauth2.Token {
		t.Helper()
		cfg := oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: d.oauth.Endpoint,
			RedirectURL: h.capture, Scopes: []string{"openid", "profile"}}
		v := oauth2.GenerateVerifier()
		b := browser()
		page := oidcLogin(t, b, get(t, b, cfg.AuthCodeURL("state-1234567890ab", oauth2.S256ChallengeOption(v),
			oauth2.SetAuthURLParam("nonce", nonce))), "alice@corp")
		code, ok := strings.CutPrefix(page.body, "code=")
		if !ok || code == "" {
			t.Fatalf("no code: %s", page.body)
		}
		tok, err := cfg.Exchange(context.Background(), code, oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	ctx := context.Background()
	good := token("airlock", "airlock-secret", "nonce-1")
	if id, err := p.identity(ctx, d, good, "nonce-1"); err != nil || id.Name != "alice@corp" {
		t.Fatalf("a good token: %+v, %v", id, err)
	}
	withIDToken := func(raw string) *oauth2.Token {
		return good.WithExtra(map[string]any{"id_token": raw})
	}
	raw := good.Extra("id_token").(string)
	parts := strings.Split(raw, ".")
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	forged := strings.Replace(string(claims), `"alice@corp"`, `"carol@corp"`, 1)
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(forged))
	tampered := strings.Join(parts, ".")

	for _, tc := range []struct {
		name  string
		tok   *oauth2.Token
		nonce string
		clock time.Duration
		want  string
	}{
		{"tampered", withIDToken(tampered), "nonce-1", 0, "signature is invalid"},
		{"expired", good, "nonce-1", 2 * time.Hour, "expired"},
		{"wrong audience", token("other-app", "other-secret", "nonce-1"), "nonce-1", 0, "another client (audience)"},
		{"replayed into another sign-in", good, "nonce-2", 0, "nonce does not match"},
		{"no ID token", good.WithExtra(map[string]any{}), "nonce-1", 0, "no ID token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.clock.Advance(tc.clock)
			defer h.clock.Advance(-tc.clock)
			_, err := p.identity(ctx, d, tc.tok, tc.nonce)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), raw) {
				t.Fatal("the error contains the token")
			}
		})
	}
}

// testSignInOtherBrowser: an answer delivered to another browser than the
// one that started the sign-in is refused (login CSRF).
func testSignInOtherBrowser(t *testing.T, h *harness) {
	victim, attacker := browser(), browser()
	login := get(t, attacker, h.base+"/sso/okta/login")
	var callback string
	attacker.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Path == "/sso/okta/callback" {
			callback = req.URL.String()
			return http.ErrUseLastResponse
		}
		return nil
	}
	oidcLogin(t, attacker, login, "bob@corp")
	p := get(t, victim, callback)
	if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "another browser") {
		t.Fatalf("%d\n%s", p.status, p.body)
	}
}

// testSAMLSignIn: SP-initiated login with the SAML identity provider, and
// the assertion refused replayed, tampered, expired and for another
// audience.
func testSAMLSignIn(t *testing.T, h *harness) {
	start := func(b *http.Client) webPage {
		t.Helper()
		p := get(t, b, h.base+"/sso/corp/login?next=/approvals")
		if !strings.HasPrefix(p.url.String(), h.saml.URL+"/sso") {
			t.Fatalf("not at the identity provider: %s", p.url)
		}
		return p
	}
	b := browser()
	acs, answer := samlLogin(t, b, start(b), "alice@corp")
	if acs != h.base+"/sso/corp/acs" {
		t.Fatalf("the answer goes to %s", acs)
	}
	done := post(t, b, acs, answer)
	if done.status != http.StatusOK {
		t.Fatalf("%d\n%s", done.status, done.body)
	}
	id, err := h.auth.Authenticate(context.Background(), "", h.lastSignIn().token)
	if err != nil || id.Name != "alice@corp" || id.Method != "sso:corp" || !slices.Equal(id.Groups, []string{"developers", "reviewers"}) {
		t.Fatalf("identity %+v, %v", id, err)
	}

	refused := func(t *testing.T, p webPage, want string) {
		t.Helper()
		if p.status == http.StatusOK || !strings.Contains(p.body, want) {
			t.Fatalf("%d, want a refusal saying %q:\n%s", p.status, want, p.body)
		}
	}
	t.Run("replayed", func(t *testing.T) {
		refused(t, post(t, b, acs, answer), "completed already")
		// Replayed into a new sign-in of the same browser: it answers
		// another request.
		start(b)
		// The IdP session lets the next request through without a form;
		// take the new relay state from the form the IdP answers with.
		_, fresh := samlAnswerFor(t, b, h, "alice@corp")
		replay := url.Values{"SAMLResponse": {answer.Get("SAMLResponse")}, "RelayState": {fresh.Get("RelayState")}}
		refused(t, post(t, b, acs, replay), "answers no sign-in started here")
	})
	t.Run("tampered", func(t *testing.T) {
		b := browser()
		_, fresh := samlLogin(t, b, start(b), "bob@corp")
		xml, _ := base64.StdEncoding.DecodeString(fresh.Get("SAMLResponse"))
		forged := strings.ReplaceAll(string(xml), "bob@corp", "alice@corp")
		fresh.Set("SAMLResponse", base64.StdEncoding.EncodeToString([]byte(forged)))
		refused(t, post(t, b, acs, fresh), "signature is invalid")
	})
	t.Run("expired", func(t *testing.T) {
		b := browser()
		_, fresh := samlLogin(t, b, start(b), "alice@corp")
		h.clock.Advance(time.Hour)
		defer h.clock.Advance(-time.Hour)
		refused(t, post(t, b, acs, fresh), "expired")
	})
	t.Run("wrong audience", func(t *testing.T) { testSAMLAudience(t, h) })
}

// samlAnswerFor returns the identity provider's answer to the sign-in the
// browser started last, when it already has a session there.
func samlAnswerFor(t *testing.T, b *http.Client, h *harness, user string) (string, url.Values) {
	t.Helper()
	p := get(t, b, h.base+"/sso/corp/login")
	if strings.Contains(p.body, `name="SAMLResponse"`) {
		return p.form(t)
	}
	return samlLogin(t, b, p, user)
}

// testSAMLAudience: a rogue service provider registered at the same
// identity provider with Airlock's ACS gets an assertion for itself; Airlock
// refuses it although signature, destination and request ID all fit.
func testSAMLAudience(t *testing.T, h *harness) {
	sp, err := h.svc.byName["corp"].saml.serviceProvider(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rogue := *sp
	rogue.EntityID = "https://rogue.example/sp"
	rogue.ReplayCache = nil
	md, _ := xmlMarshal(rogue.Metadata())
	h.saml.RegisterSPMetadata(t, "rogue", md)
	req, err := rogue.MakeAuthenticationRequest(rogue.GetSSOBindingLocation("urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"),
		"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect", "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST")
	if err != nil {
		t.Fatal(err)
	}
	b := browser()
	// The browser's own sign-in state, made to expect the rogue request.
	get(t, b, h.base+"/sso/corp/login")
	bind := ""
	u, _ := url.Parse(h.base)
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == bindCookiePlain {
			bind = c.Value
		}
	}
	key := randomString()
	if err := h.store.put(context.Background(), "login", key, pendingLogin{Provider: "corp", Purpose: PurposeWeb,
		Browser: hashHex(bind), RequestID: req.ID}, time.Minute); err != nil {
		t.Fatal(err)
	}
	redirect, err := req.Redirect(key, &rogue)
	if err != nil {
		t.Fatal(err)
	}
	p := get(t, b, redirect.String())
	var acs string
	var answer url.Values
	if strings.Contains(p.body, `name="SAMLResponse"`) {
		acs, answer = p.form(t)
	} else {
		acs, answer = samlLogin(t, b, p, "alice@corp")
	}
	got := post(t, b, acs, answer)
	if got.status == http.StatusOK || !strings.Contains(got.body, "another service provider (audience)") {
		t.Fatalf("%d\n%s", got.status, got.body)
	}
}

// testCLISignIn: the browser returns to the CLI's loopback listener with a
// one-time code, redeemed once, and only with the PKCE verifier.
func testCLISignIn(t *testing.T, h *harness) {
	signIn := func(verifier string) string {
		t.Helper()
		q := url.Values{"port": {"50123"}, "state": {"cli-state-0123456789"},
			"challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "client": {"laptop"}}
		b := browser()
		end := oidcLogin(t, b, get(t, b, h.base+"/sso/okta/cli?"+q.Encode()), "alice@corp")
		cb, err := url.Parse(end.location)
		if end.status != http.StatusSeeOther || err != nil || cb.Host != "127.0.0.1:50123" || cb.Path != "/callback" ||
			cb.Query().Get("state") != "cli-state-0123456789" {
			t.Fatalf("%d at %s, redirected to %q\n%s", end.status, end.url, end.location, end.body)
		}
		return cb.Query().Get("code")
	}
	redeem := func(code, verifier string) (int, LoginResult, string) {
		t.Helper()
		body, _ := json.Marshal(map[string]string{"code": code, "verifier": verifier})
		resp, err := http.Post(h.base+"/api/sso/token", "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var raw json.RawMessage
		_ = json.NewDecoder(resp.Body).Decode(&raw)
		var res LoginResult
		_ = json.Unmarshal(raw, &res)
		return resp.StatusCode, res, string(raw)
	}
	verifier := oauth2.GenerateVerifier()
	code := signIn(verifier)
	if status, _, body := redeem(code, oauth2.GenerateVerifier()); status != http.StatusBadRequest || !strings.Contains(body, "verifier does not match") {
		t.Fatalf("a wrong verifier: %d %s", status, body)
	}
	if status, _, body := redeem(code, verifier); status != http.StatusBadRequest || !strings.Contains(body, "used already") {
		t.Fatalf("a code after a wrong verifier: %d %s", status, body)
	}
	code = signIn(verifier)
	status, res, body := redeem(code, verifier)
	if status != http.StatusOK || res.Identity.Name != "alice@corp" || res.Provider != "okta" || res.CredentialID == "" {
		t.Fatalf("redeem: %d %s", status, body)
	}
	want := []ClientConnection{{Name: "main", Protocol: "postgres", Host: "127.0.0.1", Port: 15432},
		{Name: "shop", Protocol: "mysql", Host: "127.0.0.1", Port: 13306}}
	if !slices.Equal(res.Connections, want) || res.MCPURL != "http://127.0.0.1:18080/mcp" {
		t.Fatalf("connections %+v, mcp %q", res.Connections, res.MCPURL)
	}
	if id, err := h.auth.Authenticate(context.Background(), "alice@corp", res.Credential); err != nil || id.Method != "sso:okta" {
		t.Fatalf("the credential: %+v, %v", id, err)
	}
	if status, _, _ := redeem(code, verifier); status != http.StatusBadRequest {
		t.Fatalf("a code redeemed twice: %d", status)
	}
	// A forged start is refused before any sign-in.
	b := browser()
	bad := get(t, b, h.base+"/sso/okta/cli?port=80&state=x&challenge=y")
	if bad.status != http.StatusBadRequest {
		t.Fatalf("a forged start: %d", bad.status)
	}
}

// testStaticNameRefused: a person whose provider name is a machine
// identity's is not signed in.
func testStaticNameRefused(t *testing.T, h *harness) {
	b := browser()
	p := oidcLogin(t, b, get(t, b, h.base+"/sso/okta/login"), "admin")
	if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "machine identity") {
		t.Fatalf("%d\n%s", p.status, p.body)
	}
}
