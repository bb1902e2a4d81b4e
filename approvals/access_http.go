package approvals

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// accessRoutes adds the access requests API and pages:
//
//	POST /api/access                   {"connection", "role" | "overlay", "duration", "reason"}
//	GET  /api/access?status=…&limit=N  {"access": [AccessRequest…]}
//	GET  /api/access/{id}
//	POST /api/access/{id}/approve      {"reason"} (optional)
//	POST /api/access/{id}/deny         {"reason"} (required)
//	POST /api/access/{id}/revoke       {"reason"} (optional)
//	GET  /access, /access/{id}         the pages; POST /access/{id}/approve|deny|revoke
func (w *web) accessRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/access", w.apiAccessRequest)
	mux.HandleFunc("GET /api/access", w.apiAccessList)
	mux.HandleFunc("GET /api/access/{id}", w.apiAccessGet)
	mux.HandleFunc("POST /api/access/{id}/approve", w.apiAccessChange("approve"))
	mux.HandleFunc("POST /api/access/{id}/deny", w.apiAccessChange("deny"))
	mux.HandleFunc("POST /api/access/{id}/revoke", w.apiAccessChange("revoke"))
	mux.HandleFunc("GET /access", w.pageAccessList)
	mux.HandleFunc("GET /access/{$}", w.pageAccessList)
	mux.HandleFunc("GET /access/{id}", w.pageAccessDetail)
	mux.HandleFunc("POST /access/{id}/approve", w.pageAccessChange("approve"))
	mux.HandleFunc("POST /access/{id}/deny", w.pageAccessChange("deny"))
	mux.HandleFunc("POST /access/{id}/revoke", w.pageAccessChange("revoke"))
}

// accessPrefixes are the paths Mount registers for access requests.
var accessPrefixes = []string{"/api/access", "/api/access/", "/access", "/access/"}

// accessListResponse is the body of GET /api/access.
type accessListResponse struct {
	Access []*AccessRequest `json:"access"`
}

// accessStatus maps an access error to an HTTP status.
func accessStatus(err error) int {
	switch {
	case errors.Is(err, ErrBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, ErrAccessHeld):
		return http.StatusConflict
	}
	return status(err)
}

func (w *web) accessFail(rw http.ResponseWriter, r *http.Request, err error) {
	code := accessStatus(err)
	switch {
	case code == http.StatusInternalServerError:
		if r.Context().Err() == nil {
			w.log.Error("access API", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		writeError(rw, code, "internal error")
	case errors.Is(err, ErrNotFound):
		writeError(rw, code, "access request not found")
	default:
		writeError(rw, code, err.Error())
	}
}

func (w *web) apiAccessRequest(rw http.ResponseWriter, r *http.Request) {
	c, ok := w.caller(rw, r, true)
	if !ok {
		return
	}
	var in AccessInput
	if err := readJSON(rw, r, &in); err != nil {
		writeError(rw, http.StatusBadRequest, err.Error())
		return
	}
	got, err := w.s.RequestAccess(r.Context(), c.id, in)
	if err != nil {
		w.accessFail(rw, r, err)
		return
	}
	writeJSON(rw, http.StatusCreated, got)
}

func (w *web) apiAccessList(rw http.ResponseWriter, r *http.Request) {
	c, ok := w.caller(rw, r, false)
	if !ok {
		return
	}
	f, err := parseAccessFilter(r)
	if err != nil {
		writeError(rw, http.StatusBadRequest, err.Error())
		return
	}
	list, err := w.s.ListAccess(r.Context(), c.id, f)
	if err != nil {
		w.accessFail(rw, r, err)
		return
	}
	if list == nil {
		list = []*AccessRequest{}
	}
	writeJSON(rw, http.StatusOK, accessListResponse{Access: list})
}

func parseAccessFilter(r *http.Request) (AccessFilter, error) {
	var f AccessFilter
	q := r.URL.Query()
	for _, v := range q["status"] {
		for _, part := range strings.Split(v, ",") {
			st, err := ParseAccessStatus(strings.TrimSpace(part))
			if err != nil {
				return f, err
			}
			f.Statuses = append(f.Statuses, st)
		}
	}
	f.Identity, f.Connection = q.Get("identity"), q.Get("connection")
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return f, errors.New("limit must be a number from 1 to 1000")
		}
		f.Limit = n
	}
	return f, nil
}

func (w *web) apiAccessGet(rw http.ResponseWriter, r *http.Request) {
	c, ok := w.caller(rw, r, false)
	if !ok {
		return
	}
	got, err := w.s.GetAccess(r.Context(), c.id, r.PathValue("id"))
	if err != nil {
		w.accessFail(rw, r, err)
		return
	}
	writeJSON(rw, http.StatusOK, got)
}

func (w *web) apiAccessChange(action string) http.HandlerFunc {
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
		got, err := w.s.changeAccess(r, c, action, body.Reason)
		if err != nil {
			w.accessFail(rw, r, err)
			return
		}
		writeJSON(rw, http.StatusOK, got)
	}
}

// changeAccess applies approve, deny or revoke for c.
func (s *Service) changeAccess(r *http.Request, c caller, action, reason string) (*AccessRequest, error) {
	id := r.PathValue("id")
	switch action {
	case "approve":
		return s.DecideAccess(r.Context(), c.id, id, Approve, reason)
	case "deny":
		return s.DecideAccess(r.Context(), c.id, id, Reject, reason)
	default:
		return s.RevokeAccess(r.Context(), c.id, id, reason)
	}
}

// readJSON decodes a JSON body strictly into v.
func readJSON(rw http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return errors.New("content type must be application/json")
	}
	raw, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, maxBodyBytes))
	if err != nil {
		return errors.New("request body too large or unreadable")
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New("malformed JSON body: " + err.Error())
	}
	if dec.More() {
		return errors.New("malformed JSON body: trailing data")
	}
	return nil
}
