package sso

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/airlock-gw/airlock/protocols"
)

// loginTTL bounds a browser sign-in from start to callback; exchangeTTL
// the CLI's redemption of its one-time code.
const (
	loginTTL    = 10 * time.Minute
	exchangeTTL = 2 * time.Minute
	maxACSBody  = 1 << 20
)

// Browser binding cookie names: __Host- pins a Secure cookie to this host.
const (
	bindCookieSecure = "__Host-airlock_sso"
	bindCookiePlain  = "airlock_sso"
)

// pendingLogin is a browser sign-in between its start and the identity
// provider's answer, kept in the shared store under its state.
type pendingLogin struct {
	Provider string `json:"provider"`
	Purpose  string `json:"purpose"`
	// Browser is the SHA-256 of the binding cookie of the browser that
	// started the sign-in.
	Browser string `json:"browser"`
	// OIDC.
	Verifier string `json:"verifier,omitempty"`
	Nonce    string `json:"nonce,omitempty"`
	// SAML.
	RequestID string `json:"request_id,omitempty"`
	// The reviewers' page.
	Next string `json:"next,omitempty"`
	// The CLI's loopback listener and PKCE challenge.
	Port      int    `json:"port,omitempty"`
	State     string `json:"state,omitempty"`
	Challenge string `json:"challenge,omitempty"`
	Client    string `json:"client,omitempty"`
}

// pendingExchange is a completed CLI sign-in waiting for the CLI to redeem
// its one-time code with the PKCE verifier.
type pendingExchange struct {
	Identity  protocols.Identity `json:"identity"`
	Provider  string             `json:"provider"`
	Challenge string             `json:"challenge"`
	Client    string             `json:"client"`
}

func (s *Service) provider(w http.ResponseWriter, r *http.Request) *provider {
	p := s.byName[r.PathValue("provider")]
	if p == nil {
		page(w, http.StatusNotFound, "Unknown identity provider", "Airlock has no identity provider by that name.", "")
	}
	return p
}

// startWeb starts a sign-in to the reviewers' page.
func (s *Service) startWeb(w http.ResponseWriter, r *http.Request) {
	p := s.provider(w, r)
	if p == nil {
		return
	}
	if s.opt.SignIn == nil {
		page(w, http.StatusNotFound, "Not available", "The reviewers' page is not served here.", "")
		return
	}
	next := r.URL.Query().Get("next")
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		next = "/approvals"
	}
	s.begin(w, r, p, pendingLogin{Purpose: PurposeWeb, Next: next})
}

// startCLI starts a sign-in for `airlock login`, which listens on
// 127.0.0.1:port and holds the verifier of challenge.
func (s *Service) startCLI(w http.ResponseWriter, r *http.Request) {
	p := s.provider(w, r)
	if p == nil {
		return
	}
	q := r.URL.Query()
	port, err := strconv.Atoi(q.Get("port"))
	state, challenge, client := q.Get("state"), q.Get("challenge"), q.Get("client")
	switch {
	case err != nil || port < 1024 || port > 65535:
		err = errors.New("port: want the CLI's loopback port, 1024 to 65535")
	case !urlSafe(state, 16, 128):
		err = errors.New("state: want 16 to 128 URL-safe characters")
	case !urlSafe(challenge, 43, 43):
		err = errors.New("challenge: want a PKCE S256 challenge (43 URL-safe characters)")
	case len(client) > 64 || !printable(client):
		err = errors.New("client: at most 64 printable characters")
	}
	if err != nil {
		page(w, http.StatusBadRequest, "Bad sign-in request", "This link was not made by airlock login: "+err.Error(), "Run airlock login again.")
		return
	}
	s.begin(w, r, p, pendingLogin{Purpose: PurposeCLI, Port: port, State: state, Challenge: challenge, Client: client})
}

// begin keeps the sign-in's state and sends the browser to the identity
// provider.
func (s *Service) begin(w http.ResponseWriter, r *http.Request, p *provider, pl pendingLogin) {
	bind := bindingCookie(r)
	if bind == "" {
		bind = randomString()
	}
	pl.Provider, pl.Browser = p.cfg.Name, hashHex(bind)
	key := randomString()
	var (
		target string
		err    error
	)
	switch {
	case p.oidc != nil:
		pl.Verifier, pl.Nonce = oauth2.GenerateVerifier(), randomString()
		target, err = p.oidc.authURL(r.Context(), key, pl.Nonce, pl.Verifier)
	case p.saml != nil:
		target, pl.RequestID, err = p.saml.authURL(r.Context(), key)
	}
	if err == nil {
		err = s.store.put(r.Context(), "login", key, pl, loginTTL)
	}
	if err != nil {
		s.log.Warn("sign-in could not start", "provider", p.cfg.Name, "err", err)
		s.opt.Metrics.login(p.cfg.Name, pl.Purpose, "error")
		page(w, http.StatusServiceUnavailable, "Identity provider unavailable",
			"Airlock cannot reach "+p.cfg.Label+" right now.", "Try again in a moment.")
		return
	}
	s.setBinding(w, r, bind)
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// callback is the OIDC redirect URI.
func (s *Service) callback(w http.ResponseWriter, r *http.Request) {
	p := s.provider(w, r)
	if p == nil {
		return
	}
	q := r.URL.Query()
	pl, ok := s.resume(w, r, p, q.Get("state"))
	if !ok {
		return
	}
	if p.oidc == nil {
		s.refuse(w, p, pl, errors.New("this provider does not use OpenID Connect"))
		return
	}
	if e := q.Get("error"); e != "" {
		msg := e
		if d := q.Get("error_description"); d != "" {
			msg += ": " + d
		}
		s.refuse(w, p, pl, fmt.Errorf("the identity provider refused the sign-in (%s)", sanitize(msg, 200)))
		return
	}
	id, err := p.oidc.exchange(r.Context(), q.Get("code"), pl.Verifier, pl.Nonce)
	if err != nil {
		s.refuse(w, p, pl, err)
		return
	}
	s.finish(w, r, p, pl, id)
}

// acs is the SAML assertion consumer service (HTTP-POST binding).
func (s *Service) acs(w http.ResponseWriter, r *http.Request) {
	p := s.provider(w, r)
	if p == nil {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxACSBody)
	if err := r.ParseForm(); err != nil {
		page(w, http.StatusBadRequest, "Sign-in failed", "The identity provider's answer is malformed.", "")
		return
	}
	pl, ok := s.resume(w, r, p, r.PostForm.Get("RelayState"))
	if !ok {
		return
	}
	if p.saml == nil {
		s.refuse(w, p, pl, errors.New("this provider does not use SAML"))
		return
	}
	id, err := p.saml.parse(r.Context(), r, pl.RequestID)
	if err != nil {
		s.refuse(w, p, pl, err)
		return
	}
	s.finish(w, r, p, pl, id)
}

// resume takes the sign-in state named key (once, on any replica) and
// checks that it belongs to this provider and this browser.
func (s *Service) resume(w http.ResponseWriter, r *http.Request, p *provider, key string) (pendingLogin, bool) {
	var pl pendingLogin
	if key == "" || len(key) > 256 || s.store.take(r.Context(), "login", key, &pl) != nil {
		s.opt.Metrics.login(p.cfg.Name, "unknown", "refused")
		s.log.Info("sign-in refused", "provider", p.cfg.Name, "reason", "state unknown, expired or already used", "remote", r.RemoteAddr)
		page(w, http.StatusBadRequest, "Sign-in failed",
			"This sign-in is unknown, has expired or was completed already (a replayed answer is refused).", "Start again.")
		return pl, false
	}
	if pl.Provider != p.cfg.Name {
		s.refuse(w, p, pl, errors.New("the answer came to another provider's address than the sign-in started with"))
		return pl, false
	}
	if bind := bindingCookie(r); bind == "" || hashHex(bind) != pl.Browser {
		s.refuse(w, p, pl, errors.New("this sign-in was started in another browser"))
		return pl, false
	}
	return pl, true
}

// refuse answers a sign-in that failed with the reason, which names the
// failed check and never a token or assertion.
func (s *Service) refuse(w http.ResponseWriter, p *provider, pl pendingLogin, err error) {
	s.opt.Metrics.login(p.cfg.Name, pl.Purpose, "refused")
	s.log.Info("sign-in refused", "provider", p.cfg.Name, "flow", pl.Purpose, "reason", err.Error())
	page(w, http.StatusUnauthorized, "Sign-in failed", "Airlock refused the sign-in: "+err.Error()+".", "")
}

// finish issues what the sign-in was for: the reviewers' page cookie, or
// a one-time code the CLI redeems.
func (s *Service) finish(w http.ResponseWriter, r *http.Request, p *provider, pl pendingLogin, id protocols.Identity) {
	if s.opt.IsStatic(id.Name) {
		s.refuse(w, p, pl, fmt.Errorf("the name %q belongs to a machine identity of this Airlock", id.Name))
		return
	}
	s.clearBinding(w, r)
	switch pl.Purpose {
	case PurposeWeb:
		secret, c, err := s.store.Issue(r.Context(), Credential{Identity: id, Provider: p.cfg.Name, Purpose: PurposeWeb,
			Client: "reviewers' page"}, s.cfg.WebLifetime)
		if err != nil {
			s.fail(w, p, pl, err)
			return
		}
		s.opt.Metrics.login(p.cfg.Name, PurposeWeb, "ok")
		s.log.Info("signed in", "provider", p.cfg.Name, "identity", id.Name, "flow", PurposeWeb, "credential", c.ID)
		s.opt.SignIn(w, r, secret, pl.Next)
	case PurposeCLI:
		code := randomString()
		if err := s.store.put(r.Context(), "exchange", code, pendingExchange{Identity: id, Provider: p.cfg.Name,
			Challenge: pl.Challenge, Client: pl.Client}, exchangeTTL); err != nil {
			s.fail(w, p, pl, err)
			return
		}
		s.log.Info("signed in; the CLI redeems its code next", "provider", p.cfg.Name, "identity", id.Name, "flow", PurposeCLI)
		q := url.Values{"code": {code}, "state": {pl.State}}
		http.Redirect(w, r, fmt.Sprintf("http://127.0.0.1:%d/callback?%s", pl.Port, q.Encode()), http.StatusSeeOther)
	default:
		s.fail(w, p, pl, fmt.Errorf("unknown purpose %q", pl.Purpose))
	}
}

func (s *Service) fail(w http.ResponseWriter, p *provider, pl pendingLogin, err error) {
	s.opt.Metrics.login(p.cfg.Name, pl.Purpose, "error")
	s.log.Error("sign-in failed", "provider", p.cfg.Name, "err", err)
	page(w, http.StatusInternalServerError, "Sign-in failed", "Airlock could not complete the sign-in; the error is logged.", "")
}

// metadata serves the SAML service provider's metadata.
func (s *Service) metadata(w http.ResponseWriter, r *http.Request) {
	p := s.provider(w, r)
	if p == nil {
		return
	}
	if p.saml == nil {
		http.NotFound(w, r)
		return
	}
	md, err := p.saml.metadataXML(r.Context())
	if err != nil {
		http.Error(w, "identity provider metadata unavailable", http.StatusServiceUnavailable)
		return
	}
	b, err := xmlMarshal(md)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	_, _ = w.Write(b)
}

// secure reports whether cookies must be Secure: the base URL is https
// or the request came over TLS.
func (s *Service) secure(r *http.Request) bool {
	return strings.HasPrefix(s.cfg.BaseURL, "https://") || r.TLS != nil
}

func bindingCookie(r *http.Request) string {
	for _, name := range []string{bindCookieSecure, bindCookiePlain} {
		if c, err := r.Cookie(name); err == nil && urlSafe(c.Value, 43, 43) {
			return c.Value
		}
	}
	return ""
}

// setBinding keeps the browser's binding cookie for the sign-in. A SAML
// answer arrives as a cross-site POST, which carries only SameSite=None
// cookies; those must be Secure, so over plain HTTP (loopback) Lax is
// used and SAML works only from the same site.
func (s *Service) setBinding(w http.ResponseWriter, r *http.Request, v string) {
	c := &http.Cookie{Name: bindCookiePlain, Value: v, Path: "/", MaxAge: int(loginTTL.Seconds()), HttpOnly: true,
		SameSite: http.SameSiteLaxMode}
	if s.secure(r) {
		c.Name, c.Secure, c.SameSite = bindCookieSecure, true, http.SameSiteNoneMode
	}
	http.SetCookie(w, c)
}

func (s *Service) clearBinding(w http.ResponseWriter, r *http.Request) {
	c := &http.Cookie{Name: bindCookiePlain, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode}
	if s.secure(r) {
		c.Name, c.Secure, c.SameSite = bindCookieSecure, true, http.SameSiteNoneMode
	}
	http.SetCookie(w, c)
}

func hashHex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func urlSafe(s string, minLen, maxLen int) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~') {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	for _, c := range s {
		if c < ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// sanitize bounds text from an identity provider and drops control
// characters before it is shown or logged.
func sanitize(s string, n int) string {
	s = strings.Map(func(c rune) rune {
		if c < ' ' || c == 0x7f {
			return ' '
		}
		return c
	}, s)
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
