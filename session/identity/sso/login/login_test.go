package login

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestServerURL(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	st := stateFile{Last: "https://last:19090"}
	if got := serverURL("", getenv, stateFile{}); got != DefaultServer {
		t.Fatalf("default: %s", got)
	}
	if got := serverURL("", getenv, st); got != "https://last:19090" {
		t.Fatalf("last login: %s", got)
	}
	env["AIRLOCK_SERVER"] = "https://env:19090/"
	if got := serverURL("", getenv, st); got != "https://env:19090" {
		t.Fatalf("environment: %s", got)
	}
	if got := serverURL("https://flag:1", getenv, st); got != "https://flag:1" {
		t.Fatalf("flag: %s", got)
	}
}

func TestProviderChoice(t *testing.T) {
	body := `{"providers":[{"name":"okta","label":"Okta","type":"oidc","device":true},{"name":"corp","label":"Corp","type":"saml"}]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/sso/providers" {
			_, _ = w.Write([]byte(body))
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"authentication failed"}`))
	}))
	defer srv.Close()
	c := newClient(srv.URL)
	ctx := context.Background()
	if p, err := c.provider(ctx, "corp"); err != nil || p.Type != "saml" {
		t.Fatalf("by name: %+v, %v", p, err)
	}
	if _, err := c.provider(ctx, ""); err == nil || !strings.Contains(err.Error(), "choose one with --provider (okta, corp)") {
		t.Fatalf("several: %v", err)
	}
	if _, err := c.provider(ctx, "ldap"); err == nil || !strings.Contains(err.Error(), `no identity provider "ldap"`) {
		t.Fatalf("unknown: %v", err)
	}
	err := c.call(ctx, http.MethodPost, "/api/sso/logout", "x", nil, nil)
	if !isStatus(err, http.StatusUnauthorized) || !strings.Contains(err.Error(), "authentication failed (HTTP 401)") {
		t.Fatalf("a refusal: %v", err)
	}
}
