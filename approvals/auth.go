package approvals

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session/identity"
)

// Cookie names: with Secure the __Host- prefix also pins the cookie to this
// host and path "/", so no sibling subdomain can plant or read it.
const (
	cookieSecure   = "__Host-airlock_approvals"
	cookiePlain    = "airlock_approvals"
	cookieLifetime = 8 * time.Hour
	maxTokenBytes  = 16 << 10
	csrfField      = "csrf"
	csrfHeader     = "X-CSRF-Token"
)

var (
	errNoCredentials = errors.New("authentication required")
	errBadToken      = errors.New("authentication failed")
)

// caller is an authenticated reviewer. cookie is the raw cookie value when
// the browser scheme was used; state changes then need the CSRF token.
type caller struct {
	id     protocols.Identity
	cookie string
}

// authenticate finds and verifies the caller's token: the Authorization
// header if present (never falling back to the cookie), else the cookie.
func (w *web) authenticate(r *http.Request) (caller, error) {
	var c caller
	var token string
	if hs := r.Header.Values("Authorization"); len(hs) > 0 {
		scheme, t, ok := strings.Cut(strings.TrimSpace(hs[0]), " ")
		t = strings.TrimSpace(t)
		if len(hs) != 1 || !ok || !strings.EqualFold(scheme, "Bearer") || !validToken(t) {
			return c, errBadToken
		}
		token = t
	} else {
		ck := cookieFrom(r)
		if ck == "" {
			return c, errNoCredentials
		}
		t, ok := decodeCookie(ck)
		if !ok {
			return c, errBadToken
		}
		token, c.cookie = t, ck
	}
	if w.auth == nil {
		return c, errBadToken
	}
	id, err := w.auth.Authenticate(r.Context(), "", token)
	if err != nil {
		if errors.Is(err, identity.ErrUnavailable) {
			return c, err
		}
		return c, errBadToken
	}
	c.id = id
	return c, nil
}

// caller authenticates an API request and, for a state change made with the
// cookie, checks its CSRF header. On failure it has answered.
func (w *web) caller(rw http.ResponseWriter, r *http.Request, change bool) (caller, bool) {
	c, err := w.authenticate(r)
	if err != nil {
		if errors.Is(err, identity.ErrUnavailable) {
			rw.Header().Set("Retry-After", "5")
			writeError(rw, http.StatusServiceUnavailable, "identity provider unavailable")
			return c, false
		}
		rw.Header().Set("WWW-Authenticate", `Bearer realm="airlock"`)
		writeError(rw, http.StatusUnauthorized, err.Error())
		return c, false
	}
	if change && c.cookie != "" && !csrfValid(c.cookie, r.Header.Get(csrfHeader)) {
		writeError(rw, http.StatusForbidden, "missing or wrong CSRF token (send the page's token in "+csrfHeader+")")
		return c, false
	}
	return c, true
}

func cookieFrom(r *http.Request) string {
	for _, name := range []string{cookieSecure, cookiePlain} {
		if ck, err := r.Cookie(name); err == nil && ck.Value != "" {
			return ck.Value
		}
	}
	return ""
}

// validToken accepts what a bearer token may be: 1 to 16 KiB of visible
// ASCII.
func validToken(t string) bool {
	if t == "" || len(t) > maxTokenBytes {
		return false
	}
	for i := 0; i < len(t); i++ {
		if t[i] <= ' ' || t[i] > '~' {
			return false
		}
	}
	return true
}

// encodeCookie wraps a token for a cookie value: tokens may hold characters
// a cookie value cannot (";", ",", spaces, quotes).
func encodeCookie(token string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(token))
}

// decodeCookie reverses encodeCookie and checks the token's shape.
func decodeCookie(v string) (string, bool) {
	// The decoder skips \r and \n even in strict mode; a cookie value holds
	// neither, so a value with them is not one Airlock set.
	if len(v) > base64.RawURLEncoding.EncodedLen(maxTokenBytes) || strings.ContainsAny(v, "\r\n") {
		return "", false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(v)
	if err != nil || !validToken(string(b)) {
		return "", false
	}
	return string(b), true
}

// csrfToken derives the CSRF token from the cookie: HMAC-SHA256 keyed by the
// cookie value. A page on another origin can neither read the HttpOnly
// cookie nor compute the token, and every replica derives the same one
// without shared state.
func csrfToken(cookie string) string {
	m := hmac.New(sha256.New, []byte(cookie))
	m.Write([]byte("airlock approvals csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func csrfValid(cookie, got string) bool {
	if got == "" {
		return false
	}
	return hmac.Equal([]byte(csrfToken(cookie)), []byte(got))
}

func (w *web) secureFor(r *http.Request) bool { return w.secure || r.TLS != nil }

func (w *web) setCookie(rw http.ResponseWriter, r *http.Request, token string) {
	name := cookiePlain
	if w.secureFor(r) {
		name = cookieSecure
	}
	http.SetCookie(rw, &http.Cookie{
		Name: name, Value: encodeCookie(token), Path: "/", MaxAge: int(cookieLifetime.Seconds()),
		HttpOnly: true, Secure: w.secureFor(r), SameSite: http.SameSiteStrictMode,
	})
}

func (w *web) clearCookies(rw http.ResponseWriter, r *http.Request) {
	for _, name := range []string{cookieSecure, cookiePlain} {
		http.SetCookie(rw, &http.Cookie{
			Name: name, Value: "", Path: "/", MaxAge: -1,
			HttpOnly: true, Secure: name == cookieSecure || w.secureFor(r), SameSite: http.SameSiteStrictMode,
		})
	}
}

// safeNext keeps a post-login redirect on the approvals pages: no scheme,
// no host, no "//" or backslash tricks.
func safeNext(next string) string {
	const home = "/approvals"
	if next == "" || strings.ContainsAny(next, "\\\r\n\t") || strings.HasPrefix(next, "//") {
		return home
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return home
	}
	if u.Path != home && !strings.HasPrefix(u.Path, home+"/") {
		return home
	}
	if strings.Contains(u.Path, "/..") || u.Path == home+"/login" {
		return home
	}
	return u.RequestURI()
}

// SignIn is how people sign in to the reviewers' page besides the token
// form, which stays for machines: single sign-on providers, whose sign-in
// ends in SignedIn.
type SignIn struct {
	// Providers are offered on the sign-in page, in order.
	Providers []SignInProvider
	// SignOut, when set, is given the token of a browser that signs out,
	// so that a credential issued for the page ends with it.
	SignOut func(ctx context.Context, token string)
}

// SignInProvider is one single sign-on choice: its name (for the page's
// element ids), its label and the path that starts it on the admin
// listener; the page adds ?next=.
type SignInProvider struct {
	Name  string
	Label string
	Path  string
}

// MountWithSignIn is Mount with single sign-on offered on the sign-in page.
func (s *Service) MountWithSignIn(mux *http.ServeMux, auth protocols.Authenticator, si SignIn) {
	h := s.handler(auth, si)
	for _, p := range []string{"/api/approvals", "/api/approvals/", "/approvals", "/approvals/"} {
		mux.Handle(p, h)
	}
}

// SignedIn completes a single sign-on to the page: token (a short-lived
// credential the Authenticator accepts) goes into the page's cookie,
// exactly as a token posted to the form would, and the browser goes on to
// next when it is a page of the reviewers' site.
func (s *Service) SignedIn(rw http.ResponseWriter, r *http.Request, token, next string) {
	w := &web{s: s, log: s.log, secure: strings.HasPrefix(strings.ToLower(s.cfg.AdminURL), "https://")}
	w.setCookie(rw, r, token)
	http.Redirect(rw, r, safeNext(next), http.StatusSeeOther)
}
