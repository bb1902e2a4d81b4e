package sso

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// call sends a JSON request to the harness's API.
func (h *harness) call(t *testing.T, method, path, token string, in any) (int, string) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, h.base+path, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// testDevice: the device authorization grant, brokered by Airlock; the
// person approves in a browser elsewhere.
func testDevice(t *testing.T, h *harness) {
	status, body := h.call(t, "GET", "/api/sso/providers", "", nil)
	if status != 200 || !strings.Contains(body, `"name":"okta","label":"Okta","type":"oidc","device":true`) ||
		!strings.Contains(body, `"name":"corp","label":"Corp SAML","type":"saml","device":false`) {
		t.Fatalf("providers: %d %s", status, body)
	}
	if status, body := h.call(t, "POST", "/api/sso/device", "", map[string]string{"provider": "corp"}); status != 400 || !strings.Contains(body, "OpenID Connect") {
		t.Fatalf("device sign-in with SAML: %d %s", status, body)
	}
	status, body = h.call(t, "POST", "/api/sso/device", "", map[string]string{"provider": "okta", "client": "ssh-box"})
	var start DeviceStart
	if err := json.Unmarshal([]byte(body), &start); status != 200 || err != nil || start.UserCode == "" || start.Handle == "" {
		t.Fatalf("device start: %d %s", status, body)
	}
	if strings.Contains(body, "device_code") {
		t.Fatal("the device code reached the CLI")
	}
	// The person, in a browser on another machine.
	b := browser()
	get(t, b, start.VerificationURI)
	confirm := post(t, b, h.oidc.Issuer+"/device/login", url.Values{"user_code": {start.UserCode}, "username": {"alice@corp"}, "password": {password}})
	if !strings.Contains(confirm.body, "allowed") {
		t.Fatalf("no confirmation page:\n%s", confirm.body)
	}
	get(t, b, h.oidc.Issuer+"/device/confirm?action=allowed")
	var res LoginResult
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, body = h.call(t, "POST", "/api/sso/device/token", "", map[string]string{"handle": start.Handle})
		if status != http.StatusAccepted || time.Now().After(deadline) {
			break
		}
	}
	if err := json.Unmarshal([]byte(body), &res); status != 200 || err != nil || res.Identity.Name != "alice@corp" {
		t.Fatalf("device token: %d %s", status, body)
	}
	if c, err := h.store.Get(context.Background(), res.CredentialID); err != nil || c.Client != "ssh-box" || c.Identity.Method != "sso:okta" {
		t.Fatalf("credential %+v, %v", c, err)
	}
	if status, _ := h.call(t, "POST", "/api/sso/device/token", "", map[string]string{"handle": start.Handle}); status != 400 {
		t.Fatalf("a completed device sign-in polled again: %d", status)
	}
}

// testAPI: people list and revoke their own credentials, admins everyone's;
// logout revokes the credential it is called with.
func testAPI(t *testing.T, h *harness) {
	ctx := context.Background()
	aliceTok, aliceCred, _ := h.store.Issue(ctx, Credential{Identity: alice, Provider: "okta", Purpose: PurposeCLI}, time.Hour)
	bob := alice
	bob.Name = "bob@corp"
	bobTok, bobCred, _ := h.store.Issue(ctx, Credential{Identity: bob, Provider: "corp", Purpose: PurposeCLI}, time.Hour)
	var list struct{ Credentials []Credential }
	status, body := h.call(t, "GET", "/api/sso/credentials", aliceTok, nil)
	_ = json.Unmarshal([]byte(body), &list)
	for _, c := range list.Credentials {
		if c.Identity.Name != "alice@corp" {
			t.Fatalf("alice sees %s's credential", c.Identity.Name)
		}
	}
	if status != 200 || len(list.Credentials) == 0 || strings.Contains(body, aliceTok) {
		t.Fatalf("list: %d %s", status, body)
	}
	if status, _ := h.call(t, "GET", "/api/sso/credentials?all=true", aliceTok, nil); status != 403 {
		t.Fatalf("alice lists everyone's: %d", status)
	}
	if status, body := h.call(t, "GET", "/api/sso/credentials?all=true", adminToken, nil); status != 200 || !strings.Contains(body, bobCred.ID) {
		t.Fatalf("the admin lists everyone's: %d %s", status, body)
	}
	if status, _ := h.call(t, "POST", "/api/sso/credentials/"+bobCred.ID+"/revoke", aliceTok, nil); status != 404 {
		t.Fatalf("alice revokes bob's: %d", status)
	}
	if status, body := h.call(t, "POST", "/api/sso/credentials/"+bobCred.ID+"/revoke", adminToken, nil); status != 200 || !strings.Contains(body, `"revoked_by":"admin"`) {
		t.Fatalf("the admin revokes bob's: %d %s", status, body)
	}
	if status, _ := h.call(t, "GET", "/api/sso/credentials", bobTok, nil); status != 401 {
		t.Fatalf("a revoked credential still authenticates: %d", status)
	}
	if status, _ := h.call(t, "POST", "/api/sso/logout", adminToken, nil); status != 400 {
		t.Fatalf("logout with a static token: %d", status)
	}
	if status, _ := h.call(t, "POST", "/api/sso/logout", aliceTok, nil); status != 200 {
		t.Fatalf("logout: %d", status)
	}
	if status, _ := h.call(t, "POST", "/api/sso/logout", aliceTok, nil); status != 401 {
		t.Fatalf("logout twice: %d", status)
	}
	if c, _ := h.store.Get(ctx, aliceCred.ID); c.RevokedAt == nil || c.RevokedBy != "alice@corp" {
		t.Fatalf("after logout: %+v", c)
	}
	if status, _ := h.call(t, "GET", "/api/sso/credentials", "", nil); status != 401 {
		t.Fatalf("no token: %d", status)
	}
}
