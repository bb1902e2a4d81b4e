package agent

import (
	"encoding/json"
	"net/http"
)

// problemBase prefixes the type URI of every problem this API answers;
// each names a section of docs/agents.md.
const problemBase = "https://airlock.dev/problems/"

// problem is an RFC 9457 problem details object.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// writeProblem answers status with a problem of kind (the last segment of
// its type URI).
func writeProblem(w http.ResponseWriter, status int, kind, title, detail string) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(problem{Type: problemBase + kind, Title: title, Status: status, Detail: detail})
}

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// notFound is the one answer for a connection that does not exist and one
// the caller may not use, so that nobody can probe which exist.
func notFound(w http.ResponseWriter, name string) {
	writeProblem(w, http.StatusNotFound, "connection-not-found", "Connection not found",
		"connection \""+name+"\" does not exist or this identity may not use it; GET /v1/connections lists the usable ones")
}
