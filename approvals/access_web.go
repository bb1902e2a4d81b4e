package approvals

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"time"
)

// accessPage feeds the access templates; the embedded pageData feeds the
// shared head and foot.
type accessPage struct {
	pageData
	Pending []accessCard
	Active  []accessCard
	Recent  []accessCard
	One     *accessCard
}

// accessCard is one access request as the viewer sees it.
type accessCard struct {
	*AccessRequest
	What       string
	Duration   string
	CanApprove bool
	CanDeny    bool
	CanRevoke  bool
	Why        string
	CSRF       string
}

func (w *web) accessCard(c caller, r *AccessRequest) accessCard {
	v := accessCard{AccessRequest: r, What: Visible(r.What()), Duration: time.Duration(r.Duration).String()}
	if c.cookie != "" {
		v.CSRF = csrfToken(c.cookie)
	}
	switch r.Status {
	case AccessPending:
		voted := false
		for _, d := range r.Decisions {
			voted = voted || d.Reviewer == c.id.Name
		}
		errA, errD := w.s.MayDecideAccess(c.id, r, Approve), w.s.MayDecideAccess(c.id, r, Reject)
		v.CanApprove, v.CanDeny = errA == nil && !voted, errD == nil && !voted
		switch {
		case voted:
			v.Why = "You have already decided; waiting for other reviewers."
		case errD != nil:
			v.Why = "You are not a reviewer for this connection."
		case errA != nil:
			v.Why = "You may not approve your own access request."
		}
		v.CanRevoke = c.id.Name == r.Identity.Name
	case AccessActive:
		v.CanRevoke = w.s.MayRevokeAccess(c.id, r) == nil
	}
	return v
}

func (w *web) accessData(r *http.Request, c caller) (accessPage, error) {
	d := accessPage{pageData: w.base(r, "Access requests", &c)}
	list, err := w.s.ListAccess(r.Context(), c.id, AccessFilter{Limit: 200})
	if err != nil {
		return d, err
	}
	now := w.s.now()
	for _, x := range list {
		card := w.accessCard(c, x)
		switch {
		case x.Status == AccessPending:
			d.Pending = append(d.Pending, card)
		case x.InForce(now):
			d.Active = append(d.Active, card)
		case len(d.Recent) < 30:
			d.Recent = append(d.Recent, card)
		}
	}
	return d, nil
}

func (w *web) pageAccessList(rw http.ResponseWriter, r *http.Request) {
	c, ok := w.pageCaller(rw, r)
	if !ok {
		return
	}
	d, err := w.accessData(r, c)
	if err != nil {
		w.accessPageFail(rw, r, c, err)
		return
	}
	if q := r.URL.Query(); ValidID(q.Get("id")) {
		if msg, ok := map[string]string{"approve": "Recorded your approval of access request ", "deny": "Denied access request ",
			"revoke": "Revoked access request "}[q.Get("done")]; ok {
			d.Flash = msg + q.Get("id") + "."
		}
	}
	w.renderAccess(rw, http.StatusOK, "access-list", d)
}

func (w *web) pageAccessDetail(rw http.ResponseWriter, r *http.Request) {
	c, ok := w.pageCaller(rw, r)
	if !ok {
		return
	}
	got, err := w.s.GetAccess(r.Context(), c.id, r.PathValue("id"))
	if err != nil {
		w.accessPageFail(rw, r, c, err)
		return
	}
	d := accessPage{pageData: w.base(r, "Access request "+got.ID, &c)}
	card := w.accessCard(c, got)
	d.One = &card
	w.renderAccess(rw, http.StatusOK, "access-detail", d)
}

// pageAccessChange handles the approve, deny and revoke forms, then
// redirects (303) so that a reload cannot post twice.
func (w *web) pageAccessChange(action string) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		c, ok := w.pageCaller(rw, r)
		if !ok {
			return
		}
		r.Body = http.MaxBytesReader(rw, r.Body, maxBodyBytes)
		if err := r.ParseForm(); err != nil {
			w.accessPageFail(rw, r, c, errMalformedForm)
			return
		}
		if c.cookie != "" && !csrfValid(c.cookie, r.PostForm.Get(csrfField)) {
			w.accessPageFail(rw, r, c, errCSRF)
			return
		}
		got, err := w.s.changeAccess(r, c, action, r.PostForm.Get("reason"))
		if err != nil {
			w.accessPageFail(rw, r, c, err)
			return
		}
		http.Redirect(rw, r, "/access?done="+action+"&id="+url.QueryEscape(got.ID), http.StatusSeeOther)
	}
}

func (w *web) accessPageFail(rw http.ResponseWriter, r *http.Request, c caller, err error) {
	code, msg := accessStatus(err), err.Error()
	switch {
	case errors.Is(err, errMalformedForm):
		code = http.StatusBadRequest
	case errors.Is(err, errCSRF):
		code = http.StatusForbidden
	case errors.Is(err, ErrNotFound):
		msg = "No such access request."
	case code == http.StatusInternalServerError:
		w.log.Error("access page", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "Something went wrong; the error is logged."
	}
	d, lerr := w.accessData(r, c)
	if lerr != nil {
		d = accessPage{pageData: w.base(r, "Error", &c)}
	}
	d.Error = msg
	w.renderAccess(rw, code, "access-list", d)
}

// renderAccess writes an access template with the same headers as the
// review pages' render: a CSP that runs only this response's inline style,
// no framing, no caching, no referrer.
func (w *web) renderAccess(rw http.ResponseWriter, code int, name string, d accessPage) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, d); err != nil {
		w.log.Error("render access page", "template", name, "err", err)
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
