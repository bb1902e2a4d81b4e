package approvals

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session/identity"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"join": strings.Join,
}).ParseFS(templateFS, "templates/*.html"))

// refreshInterval is how often the page polls for changes.
const refreshInterval = 2 * time.Second

// pageData feeds the templates.
type pageData struct {
	Title     string
	Nonce     string
	User      *protocols.Identity
	CSRF      string
	Flash     string
	Error     string
	Next      string
	LiveURL   string
	RefreshMS int64
	Pending   []cardView
	Recent    []cardView
	Detail    *cardView
	// SignIn are the single sign-on choices of the sign-in page, each
	// Path carrying its ?next=.
	SignIn []SignInProvider
}

// cardView is one request as the viewer sees it.
type cardView struct {
	*Request
	Shown      string // the command with hidden characters made visible
	Short      string // one line for tables
	Hidden     bool
	CanApprove bool
	CanDeny    bool
	Why        string // why the viewer cannot act
	CSRF       string
}

func (w *web) card(c caller, r *Request) cardView {
	v := cardView{Request: r, Shown: Visible(r.Command), Short: oneLine(r.Command, 120), Hidden: HasHidden(r.Command)}
	if c.cookie != "" {
		v.CSRF = csrfToken(c.cookie)
	}
	if r.Status == StatusPending {
		errA := w.s.MayDecide(c.id, r, Approve)
		errD := w.s.MayDecide(c.id, r, Reject)
		voted := false
		for _, d := range r.Decisions {
			voted = voted || d.Reviewer == c.id.Name
		}
		v.CanApprove, v.CanDeny = errA == nil && !voted, errD == nil && !voted
		switch {
		case voted:
			v.Why = "You have already decided; waiting for other reviewers."
		case errD != nil:
			v.Why = "You are not a reviewer for this connection."
		case errA != nil:
			v.Why = "You may not approve your own command."
		}
	}
	return v
}

func (w *web) base(r *http.Request, title string, c *caller) pageData {
	d := pageData{Title: title, Nonce: nonce(), RefreshMS: refreshInterval.Milliseconds()}
	if c != nil {
		id := c.id
		d.User = &id
		if c.cookie != "" {
			d.CSRF = csrfToken(c.cookie)
		}
	}
	return d
}

func nonce() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// render writes template name with strict security headers: a CSP that
// runs only this response's inline script and style, no framing, no
// caching, no referrer.
func (w *web) render(rw http.ResponseWriter, code int, name string, d pageData) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, d); err != nil {
		w.log.Error("render approvals page", "template", name, "err", err)
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	h := rw.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+d.Nonce+"'; style-src 'nonce-"+d.Nonce+
		"'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	rw.WriteHeader(code)
	_, _ = rw.Write(buf.Bytes())
}

// pageCaller authenticates a page request; on failure it has answered,
// sending the browser to the login form.
func (w *web) pageCaller(rw http.ResponseWriter, r *http.Request) (caller, bool) {
	c, err := w.authenticate(r)
	if err == nil {
		return c, true
	}
	if errors.Is(err, identity.ErrUnavailable) {
		d := w.base(r, "Unavailable", nil)
		d.Error = "The identity provider is unavailable; try again in a moment."
		w.render(rw, http.StatusServiceUnavailable, "login", d)
		return c, false
	}
	if errors.Is(err, errBadToken) && cookieFrom(r) != "" {
		w.clearCookies(rw, r) // expired or revoked: start over
	}
	http.Redirect(rw, r, "/approvals/login?next="+url.QueryEscape(safeNext(r.URL.Path)), http.StatusSeeOther)
	return c, false
}

func (w *web) listData(ctx context.Context, r *http.Request, c caller) (pageData, error) {
	d := w.base(r, "Requests", &c)
	d.LiveURL = "/approvals/live"
	pending, err := w.s.List(ctx, c.id, Filter{Statuses: []Status{StatusPending}, Limit: 200})
	if err != nil {
		return d, err
	}
	recent, err := w.s.List(ctx, c.id, Filter{Statuses: []Status{StatusApproved, StatusDenied, StatusExpired, StatusCancelled, StatusConsumed}, Limit: 20})
	if err != nil {
		return d, err
	}
	// Oldest first: the request closest to its deadline leads.
	for i := len(pending) - 1; i >= 0; i-- {
		d.Pending = append(d.Pending, w.card(c, pending[i]))
	}
	for _, x := range recent {
		d.Recent = append(d.Recent, w.card(c, x))
	}
	return d, nil
}

var flashes = map[string]string{
	"approved": "Approved request %s.",
	"denied":   "Denied request %s.",
	"recorded": "Recorded your approval of request %s; more reviewers must approve.",
}

func (w *web) pageList(rw http.ResponseWriter, r *http.Request) {
	c, ok := w.pageCaller(rw, r)
	if !ok {
		return
	}
	d, err := w.listData(r.Context(), r, c)
	if err != nil {
		w.pageFail(rw, r, c, err)
		return
	}
	q := r.URL.Query()
	if f, ok := flashes[q.Get("done")]; ok && ValidID(q.Get("id")) {
		d.Flash = strings.Replace(f, "%s", q.Get("id"), 1)
	}
	w.render(rw, http.StatusOK, "list", d)
}

func (w *web) pageLive(rw http.ResponseWriter, r *http.Request) {
	c, err := w.authenticate(r)
	if err != nil {
		http.Error(rw, "authentication required", http.StatusUnauthorized)
		return
	}
	d, err := w.listData(r.Context(), r, c)
	if err != nil {
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	w.render(rw, http.StatusOK, "live", d)
}

func (w *web) detailData(r *http.Request, c caller) (pageData, error) {
	id := r.PathValue("id")
	req, err := w.s.Get(r.Context(), c.id, id)
	if err != nil {
		return pageData{}, err
	}
	d := w.base(r, "Request "+id, &c)
	d.LiveURL = "/approvals/" + id + "/live"
	v := w.card(c, req)
	d.Detail = &v
	return d, nil
}

func (w *web) pageDetail(rw http.ResponseWriter, r *http.Request) {
	c, ok := w.pageCaller(rw, r)
	if !ok {
		return
	}
	d, err := w.detailData(r, c)
	if err != nil {
		w.pageFail(rw, r, c, err)
		return
	}
	w.render(rw, http.StatusOK, "detail", d)
}

func (w *web) pageDetailLive(rw http.ResponseWriter, r *http.Request) {
	c, err := w.authenticate(r)
	if err != nil {
		http.Error(rw, "authentication required", http.StatusUnauthorized)
		return
	}
	d, err := w.detailData(r, c)
	if err != nil {
		http.Error(rw, http.StatusText(status(err)), status(err))
		return
	}
	w.render(rw, http.StatusOK, "detail-live", d)
}

// pageDecide handles the approve and deny forms, then redirects (303) so a
// reload cannot post twice.
func (w *web) pageDecide(v Verdict) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		c, ok := w.pageCaller(rw, r)
		if !ok {
			return
		}
		r.Body = http.MaxBytesReader(rw, r.Body, maxBodyBytes)
		if err := r.ParseForm(); err != nil {
			w.pageFail(rw, r, c, errMalformedForm)
			return
		}
		if c.cookie != "" && !csrfValid(c.cookie, r.PostForm.Get(csrfField)) {
			w.pageFail(rw, r, c, errCSRF)
			return
		}
		id := r.PathValue("id")
		got, err := w.s.Decide(r.Context(), c.id, id, v, r.PostForm.Get("reason"))
		if err != nil {
			w.pageFail(rw, r, c, err)
			return
		}
		done := "recorded"
		switch got.Status {
		case StatusApproved:
			done = "approved"
		case StatusDenied:
			done = "denied"
		}
		http.Redirect(rw, r, "/approvals?done="+done+"&id="+url.QueryEscape(got.ID), http.StatusSeeOther)
	}
}

// Page errors outside the Service's vocabulary.
var (
	errMalformedForm = errors.New("malformed form")
	errCSRF          = errors.New("the form is stale or was not sent by this page (CSRF token mismatch); reload and try again")
)

// pageFail shows the request list with an error message and the status the
// API would answer.
func (w *web) pageFail(rw http.ResponseWriter, r *http.Request, c caller, err error) {
	code, msg := status(err), err.Error()
	switch {
	case errors.Is(err, errMalformedForm):
		code = http.StatusBadRequest
	case errors.Is(err, errCSRF):
		code = http.StatusForbidden
	case errors.Is(err, ErrNotFound):
		msg = "No such approval request."
	case code == http.StatusInternalServerError:
		w.log.Error("approvals page", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "Something went wrong; the error is logged."
	}
	d, lerr := w.listData(r.Context(), r, c)
	if lerr != nil {
		d = w.base(r, "Error", &c)
	}
	d.Error = msg
	w.render(rw, code, "list", d)
}

func (w *web) loginForm(rw http.ResponseWriter, r *http.Request) {
	d := w.base(r, "Sign in", nil)
	d.Next = safeNext(r.URL.Query().Get("next"))
	d.SignIn = w.signInLinks(d.Next)
	w.render(rw, http.StatusOK, "login", d)
}

// login checks the posted token once and keeps it in the cookie. The token
// arrives in a POST body, never a URL.
func (w *web) login(rw http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(rw, r.Body, maxBodyBytes)
	d := w.base(r, "Sign in", nil)
	if err := r.ParseForm(); err != nil {
		d.Error = "Malformed form."
		w.render(rw, http.StatusBadRequest, "login", d)
		return
	}
	d.Next = safeNext(r.PostForm.Get("next"))
	d.SignIn = w.signInLinks(d.Next)
	token := strings.TrimSpace(r.PostForm.Get("token"))
	if !validToken(token) || w.auth == nil {
		d.Error = "Authentication failed."
		w.render(rw, http.StatusUnauthorized, "login", d)
		return
	}
	id, err := w.auth.Authenticate(r.Context(), "", token)
	if err != nil {
		code := http.StatusUnauthorized
		d.Error = "Authentication failed."
		if errors.Is(err, identity.ErrUnavailable) {
			code, d.Error = http.StatusServiceUnavailable, "The identity provider is unavailable; try again in a moment."
		}
		w.log.Info("approvals sign-in refused", "remote", r.RemoteAddr)
		w.render(rw, code, "login", d)
		return
	}
	w.log.Info("approvals sign-in", "identity", id.Name, "remote", r.RemoteAddr)
	w.setCookie(rw, r, token)
	http.Redirect(rw, r, d.Next, http.StatusSeeOther)
}

func (w *web) logout(rw http.ResponseWriter, r *http.Request) {
	c, err := w.authenticate(r)
	if err == nil && c.cookie != "" {
		r.Body = http.MaxBytesReader(rw, r.Body, maxBodyBytes)
		if perr := r.ParseForm(); perr != nil || !csrfValid(c.cookie, r.PostForm.Get(csrfField)) {
			http.Error(rw, "CSRF token mismatch", http.StatusForbidden)
			return
		}
	}
	if err == nil && c.cookie != "" && w.signIn.SignOut != nil {
		if token, ok := decodeCookie(c.cookie); ok {
			w.signIn.SignOut(r.Context(), token)
		}
	}
	w.clearCookies(rw, r)
	http.Redirect(rw, r, "/approvals/login", http.StatusSeeOther)
}

// signInLinks are the single sign-on choices, each returning to next.
func (w *web) signInLinks(next string) []SignInProvider {
	out := make([]SignInProvider, 0, len(w.signIn.Providers))
	for _, p := range w.signIn.Providers {
		out = append(out, SignInProvider{Name: p.Name, Label: p.Label, Path: p.Path + "?next=" + url.QueryEscape(next)})
	}
	return out
}
