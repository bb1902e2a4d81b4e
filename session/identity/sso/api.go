package sso

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"encoding/xml"
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session/identity"
)

// devicePollWait bounds one long poll of the device flow; the CLI polls
// again after it.
var devicePollWait = 25 * time.Second

const maxAPIBody = 16 << 10

// ProviderInfo is one entry of GET /api/sso/providers.
type ProviderInfo struct {
	Name  string `json:"name"`
	Label string `json:"label"`
	Type  string `json:"type"`
	// Device is set when `airlock login --device` works with it.
	Device bool `json:"device"`
}

// ClientConnection is a connection the signed-in person may use, with the
// address clients reach it at.
type ClientConnection struct {
	Name     string `json:"name"`
	Protocol string `json:"protocol"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
}

// LoginResult is what a completed `airlock login` receives: the
// credential, shown only here, and what to write client settings for.
type LoginResult struct {
	Credential   string             `json:"credential"`
	CredentialID string             `json:"credential_id"`
	Identity     protocols.Identity `json:"identity"`
	Provider     string             `json:"provider"`
	ExpiresAt    time.Time          `json:"expires_at"`
	Connections  []ClientConnection `json:"connections"`
	// MCPURL is the agent listener's MCP endpoint, when one is served.
	MCPURL string `json:"mcp_url,omitempty"`
}

// DeviceStart is the answer to POST /api/sso/device.
type DeviceStart struct {
	Handle                  string    `json:"handle"`
	UserCode                string    `json:"user_code"`
	VerificationURI         string    `json:"verification_uri"`
	VerificationURIComplete string    `json:"verification_uri_complete,omitempty"`
	Interval                int64     `json:"interval"`
	ExpiresAt               time.Time `json:"expires_at"`
}

// pendingDevice is a device authorization the CLI polls for.
type pendingDevice struct {
	Provider   string    `json:"provider"`
	DeviceCode string    `json:"device_code"`
	Interval   int64     `json:"interval"`
	Expiry     time.Time `json:"expiry"`
	Client     string    `json:"client"`
}

func (s *Service) apiProviders(w http.ResponseWriter, r *http.Request) {
	out := []ProviderInfo{}
	for _, p := range s.providers {
		out = append(out, ProviderInfo{Name: p.cfg.Name, Label: p.cfg.Label, Type: p.cfg.Type,
			Device: p.oidc != nil && p.oidc.deviceSupported(r.Context())})
	}
	writeJSON(w, http.StatusOK, map[string]any{"providers": out})
}

// apiToken redeems the one-time code of a CLI sign-in with its PKCE
// verifier.
func (s *Service) apiToken(w http.ResponseWriter, r *http.Request) {
	var body struct{ Code, Verifier string }
	if !readJSON(w, r, &body) {
		return
	}
	var pe pendingExchange
	if !urlSafe(body.Code, 16, 128) || s.store.take(r.Context(), "exchange", body.Code, &pe) != nil {
		writeError(w, http.StatusBadRequest, "the sign-in code is unknown, expired or was used already")
		return
	}
	want := oauth2.S256ChallengeFromVerifier(body.Verifier)
	if subtle.ConstantTimeCompare([]byte(want), []byte(pe.Challenge)) != 1 {
		s.opt.Metrics.login(pe.Provider, PurposeCLI, "refused")
		writeError(w, http.StatusBadRequest, "the code verifier does not match the sign-in's challenge")
		return
	}
	s.issueCLI(w, r, pe.Identity, pe.Provider, pe.Client, PurposeCLI)
}

// issueCLI issues the credential of a completed CLI sign-in and answers
// with it.
func (s *Service) issueCLI(w http.ResponseWriter, r *http.Request, id protocols.Identity, provider, client, flow string) {
	secret, c, err := s.store.Issue(r.Context(), Credential{Identity: id, Provider: provider, Purpose: PurposeCLI, Client: client}, s.cfg.Lifetime)
	if err != nil {
		s.opt.Metrics.login(provider, flow, "error")
		s.log.Error("issuing a credential failed", "provider", provider, "err", err)
		writeError(w, http.StatusInternalServerError, "could not issue the credential; the error is logged")
		return
	}
	s.opt.Metrics.login(provider, flow, "ok")
	s.log.Info("credential issued", "provider", provider, "identity", id.Name, "flow", flow, "credential", c.ID, "client", client)
	res := LoginResult{Credential: secret, CredentialID: c.ID, Identity: c.Identity, Provider: provider, ExpiresAt: c.ExpiresAt}
	res.Connections, res.MCPURL = s.clientConnections(r, id)
	writeJSON(w, http.StatusOK, res)
}

// clientConnections lists the connections id may use with the address of
// their protocol's listener, the host being client_host or the one the
// CLI reached the admin listener at.
func (s *Service) clientConnections(r *http.Request, id protocols.Identity) ([]ClientConnection, string) {
	host := s.cfg.ClientHost
	if host == "" {
		host = r.Host
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			host = h
		}
	}
	port := func(listener string) int {
		_, p, err := net.SplitHostPort(s.listener(listener))
		n, _ := strconv.Atoi(p)
		if err != nil || n == 0 {
			return 0
		}
		return n
	}
	out := []ClientConnection{}
	for name, c := range s.opt.Connections {
		if !c.Allow.Match(id) {
			continue
		}
		if p := port(string(c.Protocol)); p != 0 {
			out = append(out, ClientConnection{Name: name, Protocol: string(c.Protocol), Host: host, Port: p})
		}
	}
	slices.SortFunc(out, func(a, b ClientConnection) int { return strings.Compare(a.Name, b.Name) })
	mcp := ""
	if p := port("agent"); p != 0 {
		mcp = "http://" + net.JoinHostPort(host, strconv.Itoa(p)) + "/mcp"
	}
	return out, mcp
}

// apiDeviceStart starts a device authorization with an OIDC provider on
// the CLI's behalf: Airlock holds the client secret.
func (s *Service) apiDeviceStart(w http.ResponseWriter, r *http.Request) {
	var body struct{ Provider, Client string }
	if !readJSON(w, r, &body) {
		return
	}
	p := s.byName[body.Provider]
	switch {
	case p == nil:
		writeError(w, http.StatusNotFound, "no identity provider by that name")
		return
	case p.oidc == nil:
		writeError(w, http.StatusBadRequest, "device sign-in needs an OpenID Connect provider; "+p.cfg.Name+" uses SAML (sign in with the browser)")
		return
	case len(body.Client) > 64 || !printable(body.Client):
		writeError(w, http.StatusBadRequest, "client: at most 64 printable characters")
		return
	}
	da, err := p.oidc.deviceStart(r.Context())
	if err != nil {
		s.opt.Metrics.login(p.cfg.Name, "device", "error")
		s.log.Warn("device sign-in could not start", "provider", p.cfg.Name, "err", err)
		if errors.Is(err, errNoDeviceFlow) {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeError(w, http.StatusBadGateway, "the identity provider did not start the device sign-in: "+sanitize(err.Error(), 200))
		return
	}
	if da.Expiry.IsZero() {
		da.Expiry = s.now().Add(loginTTL)
	}
	handle := randomString()
	pd := pendingDevice{Provider: p.cfg.Name, DeviceCode: da.DeviceCode, Interval: da.Interval, Expiry: da.Expiry, Client: body.Client}
	if err := s.store.put(r.Context(), "device", handle, pd, time.Until(da.Expiry)); err != nil {
		writeError(w, http.StatusInternalServerError, "could not keep the sign-in state; the error is logged")
		s.log.Error("device sign-in state", "err", err)
		return
	}
	writeJSON(w, http.StatusOK, DeviceStart{Handle: handle, UserCode: da.UserCode, VerificationURI: da.VerificationURI,
		VerificationURIComplete: da.VerificationURIComplete, Interval: da.Interval, ExpiresAt: da.Expiry})
}

// apiDeviceToken waits (a long poll) for the person to approve the device
// code; 202 means not yet, poll again.
func (s *Service) apiDeviceToken(w http.ResponseWriter, r *http.Request) {
	var body struct{ Handle string }
	if !readJSON(w, r, &body) {
		return
	}
	var pd pendingDevice
	if !urlSafe(body.Handle, 16, 128) || s.store.peek(r.Context(), "device", body.Handle, &pd) != nil {
		writeError(w, http.StatusBadRequest, "the device sign-in is unknown, expired or completed already")
		return
	}
	p := s.byName[pd.Provider]
	if p == nil || p.oidc == nil {
		writeError(w, http.StatusBadRequest, "the device sign-in's provider is no longer configured")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), devicePollWait)
	defer cancel()
	id, err := p.oidc.devicePoll(ctx, &oauth2.DeviceAuthResponse{DeviceCode: pd.DeviceCode, Interval: pd.Interval, Expiry: pd.Expiry})
	var re *oauth2.RetrieveError
	switch {
	case err == nil:
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil && r.Context().Err() == nil && s.now().Before(pd.Expiry):
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "pending"})
		return
	case errors.As(err, &re) && (re.ErrorCode == "access_denied" || re.ErrorCode == "expired_token"),
		errors.Is(err, context.DeadlineExceeded):
		_ = s.store.take(r.Context(), "device", body.Handle, &pd)
		s.opt.Metrics.login(p.cfg.Name, "device", "refused")
		writeError(w, http.StatusForbidden, "the device sign-in was denied or has expired")
		return
	default:
		s.opt.Metrics.login(p.cfg.Name, "device", "refused")
		s.log.Info("device sign-in refused", "provider", p.cfg.Name, "reason", err.Error())
		writeError(w, http.StatusUnauthorized, "Airlock refused the sign-in: "+sanitize(tokenError(err).Error(), 300))
		return
	}
	if s.opt.IsStatic(id.Name) {
		writeError(w, http.StatusForbidden, "the name "+strconv.Quote(id.Name)+" belongs to a machine identity of this Airlock")
		return
	}
	if s.store.take(r.Context(), "device", body.Handle, &pd) != nil {
		writeError(w, http.StatusConflict, "the device sign-in was completed already")
		return
	}
	s.issueCLI(w, r, id, p.cfg.Name, pd.Client, "device")
}

// caller authenticates an API request's bearer token; on failure it has
// answered.
func (s *Service) caller(w http.ResponseWriter, r *http.Request) (protocols.Identity, string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || len(r.Header.Values("Authorization")) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="airlock"`)
		writeError(w, http.StatusUnauthorized, "bearer token required")
		return protocols.Identity{}, "", false
	}
	id, err := s.opt.Auth.Authenticate(r.Context(), "", token)
	if err != nil {
		if errors.Is(err, identity.ErrUnavailable) {
			writeError(w, http.StatusServiceUnavailable, "identity provider unavailable")
		} else {
			w.Header().Set("WWW-Authenticate", `Bearer realm="airlock", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "authentication failed (expired or revoked credentials are refused)")
		}
		return protocols.Identity{}, "", false
	}
	return id, token, true
}

// apiList lists the caller's credentials; an admin's with ?all=true lists
// everyone's. ?ended=true includes revoked and expired ones.
func (s *Service) apiList(w http.ResponseWriter, r *http.Request) {
	id, _, ok := s.caller(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	name := id.Name
	if q.Get("all") == "true" {
		if !s.admins.Match(id) {
			writeError(w, http.StatusForbidden, "listing everyone's credentials is for sso.admins")
			return
		}
		name = ""
	}
	list, err := s.store.List(r.Context(), name, q.Get("ended") == "true")
	if err != nil {
		s.log.Error("list credentials", "err", err)
		writeError(w, http.StatusInternalServerError, "could not list credentials; the error is logged")
		return
	}
	if list == nil {
		list = []Credential{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"credentials": list})
}

// apiRevoke revokes a credential of the caller's own, or anyone's for an
// admin.
func (s *Service) apiRevoke(w http.ResponseWriter, r *http.Request) {
	id, _, ok := s.caller(w, r)
	if !ok {
		return
	}
	c, err := s.store.Get(r.Context(), r.PathValue("id"))
	if err != nil || c.Identity.Name != id.Name && !s.admins.Match(id) {
		// The same answer for another person's credential: ids are not
		// probed.
		writeError(w, http.StatusNotFound, ErrNotFound.Error())
		return
	}
	s.revoke(w, r, c, id)
}

// apiLogout revokes the credential the request is authenticated with.
func (s *Service) apiLogout(w http.ResponseWriter, r *http.Request) {
	id, token, ok := s.caller(w, r)
	if !ok {
		return
	}
	c, err := s.store.Find(r.Context(), token)
	if err != nil {
		writeError(w, http.StatusBadRequest, "the request is not authenticated with a short-lived credential")
		return
	}
	s.revoke(w, r, c, id)
}

func (s *Service) revoke(w http.ResponseWriter, r *http.Request, c Credential, by protocols.Identity) {
	c, err := s.store.Revoke(r.Context(), c.ID, by.Name)
	if err != nil {
		s.log.Error("revoke credential", "credential", c.ID, "err", err)
		writeError(w, http.StatusInternalServerError, "could not revoke; the error is logged")
		return
	}
	s.log.Info("credential revoked", "credential", c.ID, "identity", c.Identity.Name, "by", by.Name)
	writeJSON(w, http.StatusOK, c)
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "malformed JSON body")
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func xmlMarshal(v any) ([]byte, error) {
	b, err := xml.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), b...), nil
}
