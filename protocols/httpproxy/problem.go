package httpproxy

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// problemBase prefixes the type URI of every problem (RFC 9457) the proxy
// answers; each names a section of docs/http.md.
const problemBase = "https://airlock.dev/problems/"

// problem is an RFC 9457 problem details object with Airlock's members.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Decision members: why a request was refused or waits.
	Risk       string   `json:"risk,omitempty"`
	Rules      []string `json:"rules,omitempty"`
	ApprovalID string   `json:"approval_id,omitempty"`
	ReviewURL  string   `json:"review_url,omitempty"`
	WaitURL    string   `json:"wait_url,omitempty"`
	RetryAfter int      `json:"retry_after,omitempty"`
}

// write answers the problem and returns its status.
func (p problem) write(w http.ResponseWriter) int {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if p.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	w.WriteHeader(p.Status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(p)
	return p.Status
}

func newProblem(status int, kind, title, detail string) problem {
	return problem{Type: problemBase + kind, Title: title, Status: status, Detail: detail}
}
