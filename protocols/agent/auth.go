package agent

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session"
	"github.com/airlock-gw/airlock/session/identity"
)

// caller is an authenticated HTTP caller: what Gateway.Admit needs to
// admit it to a session on a connection.
type caller struct {
	id     protocols.Identity
	secret protocols.Secret
	peer   string
	tls    bool
	local  bool
}

type callerKey struct{}

func callerFrom(ctx context.Context) (*caller, bool) {
	c, ok := ctx.Value(callerKey{}).(*caller)
	return c, ok
}

// authenticate is the bearer middleware of every endpoint but the
// discovery documents: a missing or refused token is answered 401 with a
// challenge that points to the protected resource metadata (RFC 9728), an
// unreachable identity provider 503. A token sent in clear from another
// machine is refused (403) as on the wire listeners, after the fact:
// HTTP has no way to refuse it before it is sent.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		values := r.Header.Values("Authorization")
		if len(values) == 0 {
			s.challenge(w, r, "", "a bearer token is required: send \"Authorization: Bearer <token>\"")
			return
		}
		token, ok := bearer(values)
		if !ok {
			s.challenge(w, r, "invalid_request", "malformed Authorization header (want one \"Bearer <token>\")")
			return
		}
		c := &caller{secret: protocols.Secret(token), peer: r.RemoteAddr, tls: r.TLS != nil, local: isLoopback(r.RemoteAddr)}
		if err := s.gateway.AcceptsSecret(session.Caller{Protocol: protocols.HTTP, Peer: c.peer, TLS: c.tls, Local: c.local}); err != nil {
			writeProblem(w, http.StatusForbidden, "tls-required", "TLS required",
				"tokens are accepted only over TLS from another machine: use https:// and revoke the token that was sent in clear")
			return
		}
		id, err := s.auth.Authenticate(r.Context(), "", token)
		if err != nil {
			if errors.Is(err, identity.ErrUnavailable) {
				w.Header().Set("Retry-After", "5")
				writeProblem(w, http.StatusServiceUnavailable, "identity-unavailable", "Identity provider unavailable",
					"the OIDC issuer could not be reached to verify the token; try again shortly")
				return
			}
			s.gateway.RejectedToken(r.Context(), session.Caller{Protocol: protocols.HTTP, Peer: c.peer})
			s.challenge(w, r, "invalid_token", "the token was not accepted")
			return
		}
		c.id = id
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

// challenge answers 401 with WWW-Authenticate (RFC 6750, RFC 9728).
func (s *Server) challenge(w http.ResponseWriter, r *http.Request, code, detail string) {
	v := `Bearer realm="airlock"`
	if code != "" {
		v += `, error="` + code + `"`
	}
	v += `, resource_metadata="` + baseURL(r) + metadataPath(r.URL.Path) + `"`
	w.Header().Set("WWW-Authenticate", v)
	writeProblem(w, http.StatusUnauthorized, "unauthorized", "Authentication required", detail)
}

// bearer extracts the token of a single "Bearer <token>" header. The
// scheme is case-insensitive (RFC 9110 section 11.1); the token is visible
// ASCII.
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

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// baseURL is the listener's address as the caller reached it.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
