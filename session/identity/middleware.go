package identity

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/airlock-gw/airlock/protocols"
)

type ctxKey struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id protocols.Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the identity Middleware authenticated, if any.
func FromContext(ctx context.Context) (protocols.Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(protocols.Identity)
	return id, ok
}

// Middleware authenticates every request by its `Authorization: Bearer`
// token (RFC 6750) with an empty name, and passes it to next with the
// Identity in its context (FromContext). The Authorization header is removed
// from the request next sees, so that a proxy cannot forward the caller's
// token upstream. A missing or refused token is answered with 401, a JSON
// error and `WWW-Authenticate: Bearer`; an unreachable identity provider with
// 503. Tokens are never logged.
func Middleware(auth protocols.Authenticator, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		values := r.Header.Values("Authorization")
		if len(values) == 0 {
			unauthorized(w, "", "bearer token required")
			return
		}
		token, ok := bearer(values)
		if !ok {
			unauthorized(w, "invalid_request", "malformed Authorization header (want one \"Bearer <token>\")")
			return
		}
		id, err := auth.Authenticate(r.Context(), "", token)
		if err != nil {
			if errors.Is(err, ErrUnavailable) {
				w.Header().Set("Retry-After", "5")
				writeError(w, http.StatusServiceUnavailable, "identity provider unavailable")
				return
			}
			unauthorized(w, "invalid_token", "authentication failed")
			return
		}
		r = r.WithContext(NewContext(r.Context(), id))
		r.Header = r.Header.Clone()
		r.Header.Del("Authorization")
		next.ServeHTTP(w, r)
	})
}

// bearer extracts the token of a single "Bearer <token>" header. The scheme
// is case-insensitive (RFC 9110 section 11.1); the token is visible ASCII.
func bearer(values []string) (string, bool) {
	if len(values) != 1 {
		return "", false
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(values[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimLeft(token, " ")
	if token == "" {
		return "", false
	}
	for i := 0; i < len(token); i++ {
		if token[i] <= ' ' || token[i] > '~' {
			return "", false
		}
	}
	return token, true
}

func unauthorized(w http.ResponseWriter, code, msg string) {
	challenge := `Bearer realm="airlock"`
	if code != "" {
		challenge += `, error="` + code + `"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	writeError(w, http.StatusUnauthorized, msg)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{msg})
}
