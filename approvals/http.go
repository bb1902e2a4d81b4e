package approvals

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/airlock-gw/airlock/protocols"
)

// maxBodyBytes caps request bodies (a reason or a login form).
const maxBodyBytes = 16 << 10

// Handler returns the reviewers' channels for the admin listener: the JSON
// API under /api/approvals and the web page under /approvals. Mount it for
// the four prefixes "/api/approvals", "/api/approvals/", "/approvals" and
// "/approvals/" (Mount does). Callers authenticate with an identity token or
// OIDC JWT as "Authorization: Bearer …", or, in a browser, with the cookie
// the login form at /approvals/login sets.
//
// Browser scheme: the login form posts the token once; the reply sets an
// HttpOnly, SameSite=Strict cookie (named __Host-airlock_approvals and
// Secure when the admin URL is https or the request came over TLS) holding
// the token, which is re-verified on every request, so replicas share no
// session state and an expired JWT logs the browser out. Every state change
// made with the cookie must carry a CSRF token derived from the cookie by
// HMAC (a form field or the X-CSRF-Token header) and pass Go's
// CrossOriginProtection (Sec-Fetch-Site / Origin). Tokens never travel in
// URLs.
func (s *Service) Handler(auth protocols.Authenticator) http.Handler {
	return s.handler(auth, SignIn{})
}

func (s *Service) handler(auth protocols.Authenticator, si SignIn) http.Handler {
	w := &web{s: s, auth: auth, log: s.log, signIn: si}
	w.secure = strings.HasPrefix(strings.ToLower(s.cfg.AdminURL), "https://")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/approvals", w.apiList)
	mux.HandleFunc("GET /api/approvals/{id}", w.apiGet)
	mux.HandleFunc("POST /api/approvals/{id}/approve", w.apiDecide(Approve))
	mux.HandleFunc("POST /api/approvals/{id}/deny", w.apiDecide(Reject))
	mux.HandleFunc("GET /approvals", w.pageList)
	mux.HandleFunc("GET /approvals/{$}", w.pageList)
	mux.HandleFunc("GET /approvals/live", w.pageLive)
	mux.HandleFunc("GET /approvals/login", w.loginForm)
	mux.HandleFunc("POST /approvals/login", w.login)
	mux.HandleFunc("POST /approvals/logout", w.logout)
	mux.HandleFunc("GET /approvals/{id}", w.pageDetail)
	mux.HandleFunc("GET /approvals/{id}/live", w.pageDetailLive)
	mux.HandleFunc("POST /approvals/{id}/approve", w.pageDecide(Approve))
	mux.HandleFunc("POST /approvals/{id}/deny", w.pageDecide(Reject))
	w.accessRoutes(mux)
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		writeError(rw, http.StatusForbidden, "cross-origin request refused")
	}))
	return cop.Handler(mux)
}

// Mount registers Handler on mux for the approvals prefixes.
func (s *Service) Mount(mux *http.ServeMux, auth protocols.Authenticator) {
	h := s.Handler(auth)
	for _, p := range append([]string{"/api/approvals", "/api/approvals/", "/approvals", "/approvals/"}, accessPrefixes...) {
		mux.Handle(p, h)
	}
}

type web struct {
	s      *Service
	auth   protocols.Authenticator
	log    *slog.Logger
	secure bool
	signIn SignIn
}

// listResponse is the body of GET /api/approvals.
type listResponse struct {
	Approvals []*Request `json:"approvals"`
}

// decisionBody is the body of POST …/approve and …/deny.
type decisionBody struct {
	Reason string `json:"reason"`
}

func (w *web) apiList(rw http.ResponseWriter, r *http.Request) {
	c, ok := w.caller(rw, r, false)
	if !ok {
		return
	}
	f, err := parseFilter(r)
	if err != nil {
		writeError(rw, http.StatusBadRequest, err.Error())
		return
	}
	list, err := w.s.List(r.Context(), c.id, f)
	if err != nil {
		w.fail(rw, r, err)
		return
	}
	writeJSON(rw, http.StatusOK, listResponse{Approvals: list})
}

func parseFilter(r *http.Request) (Filter, error) {
	var f Filter
	q := r.URL.Query()
	for _, v := range q["status"] {
		for _, part := range strings.Split(v, ",") {
			st, err := ParseStatus(strings.TrimSpace(part))
			if err != nil {
				return f, err
			}
			f.Statuses = append(f.Statuses, st)
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return f, errors.New("limit must be a number from 1 to 1000")
		}
		f.Limit = n
	}
	return f, nil
}

func (w *web) apiGet(rw http.ResponseWriter, r *http.Request) {
	c, ok := w.caller(rw, r, false)
	if !ok {
		return
	}
	req, err := w.s.Get(r.Context(), c.id, r.PathValue("id"))
	if err != nil {
		w.fail(rw, r, err)
		return
	}
	writeJSON(rw, http.StatusOK, req)
}

func (w *web) apiDecide(v Verdict) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		c, ok := w.caller(rw, r, true)
		if !ok {
			return
		}
		body, err := readDecision(rw, r)
		if err != nil {
			writeError(rw, http.StatusBadRequest, err.Error())
			return
		}
		req, err := w.s.Decide(r.Context(), c.id, r.PathValue("id"), v, body.Reason)
		if err != nil {
			w.fail(rw, r, err)
			return
		}
		writeJSON(rw, http.StatusOK, req)
	}
}

// readDecision decodes {"reason": …} strictly; an empty body is no reason.
func readDecision(rw http.ResponseWriter, r *http.Request) (decisionBody, error) {
	var body decisionBody
	raw, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, maxBodyBytes))
	if err != nil {
		return body, errors.New("request body too large or unreadable")
	}
	if len(strings.TrimSpace(string(raw))) == 0 {
		return body, nil
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return body, errors.New("content type must be application/json")
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return body, errors.New(`malformed JSON body (want {"reason": "…"})`)
	}
	if dec.More() {
		return body, errors.New("malformed JSON body: trailing data")
	}
	return body, nil
}

// status maps a Service error to an HTTP status.
func status(err error) int {
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrNotPending), errors.Is(err, ErrAlreadyVoted):
		return http.StatusConflict
	case errors.Is(err, ErrBadReason):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// fail answers err; internal errors are logged, not shown.
func (w *web) fail(rw http.ResponseWriter, r *http.Request, err error) {
	code := status(err)
	if code == http.StatusInternalServerError {
		if r.Context().Err() == nil {
			w.log.Error("approvals API", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		writeError(rw, code, "internal error")
		return
	}
	msg := err.Error()
	if errors.Is(err, ErrNotFound) {
		msg = "approval request not found"
	}
	writeError(rw, code, msg)
}

func setAPIHeaders(h http.Header) {
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
}

func writeJSON(rw http.ResponseWriter, code int, v any) {
	setAPIHeaders(rw.Header())
	rw.WriteHeader(code)
	enc := json.NewEncoder(rw)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
}

func writeError(rw http.ResponseWriter, code int, msg string) {
	writeJSON(rw, code, apiError{Error: msg})
}
