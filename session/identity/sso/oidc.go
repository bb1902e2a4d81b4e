package sso

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/airlock-gw/airlock/protocols"
)

// discoveryRetry is the least time between two discovery attempts of an
// identity provider that did not answer.
const discoveryRetry = 5 * time.Second

// asymmetricAlgs are the ID token signatures accepted: never HMAC, whose
// key the client shares, nor "none".
var asymmetricAlgs = []string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"}

// oidcProvider is Airlock as the OpenID Connect client of one issuer.
type oidcProvider struct {
	cfg      Provider
	redirect string // BaseURL + /sso/NAME/callback
	client   *http.Client
	log      *slog.Logger
	now      func() time.Time

	mu      sync.Mutex
	disc    *oidcDiscovered
	lastTry time.Time
	lastErr error
}

// oidcDiscovered is what discovery found.
type oidcDiscovered struct {
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	oauth    oauth2.Config
}

func newOIDCProvider(cfg Provider, base string, client *http.Client, log *slog.Logger, now func() time.Time) *oidcProvider {
	return &oidcProvider{cfg: cfg, redirect: base + "/sso/" + cfg.Name + "/callback", client: client, log: log, now: now}
}

// discovered returns the discovery result, discovering now if needed; a
// failure is retried no sooner than discoveryRetry later.
func (p *oidcProvider) discovered(ctx context.Context) (*oidcDiscovered, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.disc != nil {
		return p.disc, nil
	}
	if !p.lastTry.IsZero() && p.now().Sub(p.lastTry) < discoveryRetry {
		return nil, p.lastErr
	}
	p.lastTry = p.now()
	dctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, p.client), 15*time.Second)
	defer cancel()
	op, err := oidc.NewProvider(dctx, p.cfg.Issuer)
	if err != nil {
		p.lastErr = fmt.Errorf("discover %s: %w", p.cfg.Issuer, err)
		p.log.Warn("identity provider not reachable; sign-ins with it fail until it is", "provider", p.cfg.Name, "err", err)
		return nil, p.lastErr
	}
	p.disc = &oidcDiscovered{
		provider: op,
		verifier: op.Verifier(&oidc.Config{ClientID: p.cfg.ClientID, SupportedSigningAlgs: asymmetricAlgs, Now: p.now}),
		oauth: oauth2.Config{ClientID: p.cfg.ClientID, ClientSecret: p.cfg.ClientSecret.Reveal(),
			Endpoint: op.Endpoint(), Scopes: p.cfg.Scopes, RedirectURL: p.redirect},
	}
	p.log.Info("identity provider discovered", "provider", p.cfg.Name, "issuer", p.cfg.Issuer,
		"device_flow", op.Endpoint().DeviceAuthURL != "")
	return p.disc, nil
}

// authURL is where the browser starts: the authorization endpoint with
// state, nonce and the PKCE challenge of verifier.
func (p *oidcProvider) authURL(ctx context.Context, state, nonce, verifier string) (string, error) {
	d, err := p.discovered(ctx)
	if err != nil {
		return "", err
	}
	return d.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), nil
}

// exchange redeems the authorization code with the PKCE verifier and maps
// the verified ID token to an identity.
func (p *oidcProvider) exchange(ctx context.Context, code, verifier, nonce string) (protocols.Identity, error) {
	d, err := p.discovered(ctx)
	if err != nil {
		return protocols.Identity{}, err
	}
	tok, err := d.oauth.Exchange(oidc.ClientContext(ctx, p.client), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return protocols.Identity{}, fmt.Errorf("redeem the authorization code: %w", tokenError(err))
	}
	return p.identity(ctx, d, tok, nonce)
}

// deviceSupported reports whether the issuer advertises a device
// authorization endpoint.
func (p *oidcProvider) deviceSupported(ctx context.Context) bool {
	d, err := p.discovered(ctx)
	return err == nil && d.oauth.Endpoint.DeviceAuthURL != ""
}

// deviceStart asks the issuer for a device and user code.
func (p *oidcProvider) deviceStart(ctx context.Context) (*oauth2.DeviceAuthResponse, error) {
	d, err := p.discovered(ctx)
	if err != nil {
		return nil, err
	}
	if d.oauth.Endpoint.DeviceAuthURL == "" {
		return nil, errNoDeviceFlow
	}
	da, err := d.oauth.DeviceAuth(oidc.ClientContext(ctx, p.client))
	if err != nil {
		return nil, fmt.Errorf("start device authorization: %w", tokenError(err))
	}
	return da, nil
}

var errNoDeviceFlow = errors.New("the identity provider offers no device authorization endpoint")

// devicePoll waits, until ctx ends, for the person to approve the device
// code, and maps the ID token to an identity.
func (p *oidcProvider) devicePoll(ctx context.Context, da *oauth2.DeviceAuthResponse) (protocols.Identity, error) {
	d, err := p.discovered(ctx)
	if err != nil {
		return protocols.Identity{}, err
	}
	tok, err := d.oauth.DeviceAccessToken(oidc.ClientContext(ctx, p.client), da)
	if err != nil {
		return protocols.Identity{}, err
	}
	return p.identity(ctx, d, tok, "")
}

// identity verifies the token response's ID token (signature, issuer,
// audience, expiry, nonce, access token hash) and maps its claims; claims
// the ID token lacks are read from the userinfo endpoint, for the same
// subject.
func (p *oidcProvider) identity(ctx context.Context, d *oidcDiscovered, tok *oauth2.Token, nonce string) (protocols.Identity, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return protocols.Identity{}, errors.New("the identity provider returned no ID token (is the openid scope configured?)")
	}
	idt, err := d.verifier.Verify(ctx, raw)
	if err != nil {
		return protocols.Identity{}, verifyError(err)
	}
	if idt.Nonce != nonce {
		return protocols.Identity{}, errors.New("the ID token's nonce does not match this sign-in (a replayed or injected token)")
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return protocols.Identity{}, fmt.Errorf("the access token does not match the ID token: %w", err)
		}
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return protocols.Identity{}, fmt.Errorf("decode the ID token's claims: %w", err)
	}
	m := p.cfg.mapping()
	if _, ok := claims[m.NameClaim]; !ok && d.provider.UserInfoEndpoint() != "" {
		ui, err := d.provider.UserInfo(oidc.ClientContext(ctx, p.client), oauth2.StaticTokenSource(tok))
		if err != nil {
			return protocols.Identity{}, fmt.Errorf("read userinfo: %w", err)
		}
		if ui.Subject != idt.Subject {
			return protocols.Identity{}, errors.New("userinfo names another subject than the ID token")
		}
		extra := map[string]any{}
		if err := ui.Claims(&extra); err != nil {
			return protocols.Identity{}, fmt.Errorf("decode userinfo: %w", err)
		}
		for k, v := range extra {
			if _, ok := claims[k]; !ok {
				claims[k] = v
			}
		}
	}
	return m.Identity(claims, p.cfg.Method())
}

// verifyError names the check an ID token failed, for the person and the
// log; go-oidc's messages never contain the token.
func verifyError(err error) error {
	var expired *oidc.TokenExpiredError
	msg := err.Error()
	switch {
	case errors.As(err, &expired):
		return fmt.Errorf("the ID token has expired: %w", err)
	case strings.Contains(msg, "audience"):
		return fmt.Errorf("the ID token was issued for another client (audience): %w", err)
	case strings.Contains(msg, "signature"):
		return fmt.Errorf("the ID token's signature is invalid (tampered, or not signed by the issuer): %w", err)
	case strings.Contains(msg, "issuer"):
		return fmt.Errorf("the ID token comes from another issuer: %w", err)
	}
	return fmt.Errorf("the ID token was refused: %w", err)
}

// tokenError keeps an OAuth error's code and description, which the
// identity provider wrote for people, and drops the response body.
func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode != "" {
		if re.ErrorDescription != "" {
			return fmt.Errorf("%s: %s", re.ErrorCode, re.ErrorDescription)
		}
		return errors.New(re.ErrorCode)
	}
	return err
}
