package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

// unavailableAuth refuses everything as if the identity provider were down.
type unavailableAuth struct{}

func (unavailableAuth) Authenticate(context.Context, string, string) (protocols.Identity, error) {
	return protocols.Identity{}, fmt.Errorf("%w: %w", protocols.ErrAuthFailed, ErrUnavailable)
}

// recordingAuth remembers the name it was asked with.
type recordingAuth struct {
	inner protocols.Authenticator
	names []string
}

func (r *recordingAuth) Authenticate(ctx context.Context, name, secret string) (protocols.Identity, error) {
	r.names = append(r.names, name)
	return r.inner.Authenticate(ctx, name, secret)
}

func TestMiddleware(t *testing.T) {
	f := newOIDCFixture(t, nil)
	jwt := sign(t, f.rsa, f.claims(nil))
	type seen struct {
		id protocols.Identity
		ok bool
	}
	cases := []struct {
		name       string
		auth       protocols.Authenticator
		headers    []string // Authorization values
		wantStatus int
		wantID     string
		wantChall  string // WWW-Authenticate, when 401
	}{
		{name: "static token", headers: []string{"Bearer ci-token"}, wantStatus: 200, wantID: "ci-bot"},
		{name: "scheme case-insensitive", headers: []string{"bearer  ci-token"}, wantStatus: 200, wantID: "ci-bot"},
		{name: "oidc token", headers: []string{"Bearer " + jwt}, wantStatus: 200, wantID: "alice"},
		{name: "no header", wantStatus: 401, wantChall: `Bearer realm="airlock"`},
		{name: "wrong token", headers: []string{"Bearer nope"}, wantStatus: 401, wantChall: `Bearer realm="airlock", error="invalid_token"`},
		{name: "basic scheme", headers: []string{"Basic Y2ktYm90OmNpLXRva2Vu"}, wantStatus: 401, wantChall: `Bearer realm="airlock", error="invalid_request"`},
		{name: "empty token", headers: []string{"Bearer "}, wantStatus: 401, wantChall: `Bearer realm="airlock", error="invalid_request"`},
		{name: "token with a space", headers: []string{"Bearer ci token"}, wantStatus: 401, wantChall: `Bearer realm="airlock", error="invalid_request"`},
		{name: "two headers", headers: []string{"Bearer ci-token", "Bearer ci-token"}, wantStatus: 401, wantChall: `Bearer realm="airlock", error="invalid_request"`},
		{name: "provider down", auth: unavailableAuth{}, headers: []string{"Bearer " + jwt}, wantStatus: 503},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recordingAuth{inner: f.auth}
			if tc.auth != nil {
				rec.inner = tc.auth
			}
			var got seen
			called := false
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				called = true
				got.id, got.ok = FromContext(r.Context())
				if h := r.Header.Get("Authorization"); h != "" {
					t.Errorf("next saw Authorization %q", h)
				}
				w.WriteHeader(http.StatusOK)
			})
			req := httptest.NewRequest(http.MethodGet, "/api/approvals", nil)
			for _, h := range tc.headers {
				req.Header.Add("Authorization", h)
			}
			w := httptest.NewRecorder()
			Middleware(rec, next).ServeHTTP(w, req)

			if w.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", w.Code, tc.wantStatus, w.Body)
			}
			if tc.wantStatus == 200 {
				if !called || !got.ok || got.id.Name != tc.wantID {
					t.Fatalf("next called %v with identity %+v (%v), want %s", called, got.id, got.ok, tc.wantID)
				}
				if len(rec.names) != 1 || rec.names[0] != "" {
					t.Fatalf("Authenticate asked with names %q, want one empty name", rec.names)
				}
				if len(req.Header.Values("Authorization")) != len(tc.headers) {
					t.Fatal("the caller's request headers were modified")
				}
				return
			}
			if called {
				t.Fatal("next called for a refused request")
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q", cc)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tc.wantChall {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tc.wantChall)
			}
			var body struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error == "" {
				t.Fatalf("body %q is not a JSON error: %v", w.Body, err)
			}
			for _, h := range tc.headers {
				if tok := strings.TrimSpace(h[strings.IndexByte(h, ' ')+1:]); tok != "" && strings.Contains(w.Body.String(), tok) {
					t.Errorf("response echoes the token")
				}
			}
		})
	}
}

func TestFromContextEmpty(t *testing.T) {
	if id, ok := FromContext(context.Background()); ok || id.Name != "" {
		t.Fatalf("FromContext on an empty context = %+v, %v", id, ok)
	}
	ctx := NewContext(context.Background(), protocols.Identity{Name: "x"})
	if id, ok := FromContext(ctx); !ok || id.Name != "x" {
		t.Fatalf("FromContext = %+v, %v", id, ok)
	}
}

func TestMiddlewareLogsNoToken(t *testing.T) {
	f := newOIDCFixture(t, nil)
	h := Middleware(f.auth, http.NotFoundHandler())
	expired := sign(t, f.rsa, f.claims(func(c map[string]any) { c["exp"] = f.clock.Now().Add(-time.Hour).Unix() }))
	for _, tok := range []string{"wrong-static-token", expired} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("status %d", w.Code)
		}
		if strings.Contains(f.logs.String(), tok) {
			t.Fatalf("log contains the token:\n%s", f.logs)
		}
	}
	if !strings.Contains(f.logs.String(), "authentication refused") {
		t.Fatalf("refusals not logged at debug:\n%s", f.logs)
	}
}
