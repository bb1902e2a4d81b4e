package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/airlock-gw/airlock/protocols"
)

// discoveryRetry is the least time between two discovery attempts while the
// issuer cannot be discovered; JWTs are refused meanwhile without a request.
const discoveryRetry = 5 * time.Second

// ErrUnavailable is wrapped, together with protocols.ErrAuthFailed, into the
// error of an authentication that failed because the identity provider could
// not be discovered. The HTTP middleware answers it with 503.
var ErrUnavailable = errors.New("identity provider unavailable")

// keySet is a verifier bound to one key set URL.
type keySet struct {
	verifier *oidc.IDTokenVerifier
	url      string
	client   *http.Client // the throttled client the key set fetches with
}

// oidcAuth verifies JWTs of one issuer. Until discovery succeeds it has no
// key set and every JWT fails closed.
type oidcAuth struct {
	cfg    OIDCConfig
	rules  claimRules
	client *http.Client // bounded client for discovery
	log    *slog.Logger
	now    func() time.Time

	ks atomic.Pointer[keySet]

	mu       sync.Mutex
	inflight chan struct{} // closed when the running discovery ends
	lastTry  time.Time
	lastErr  error
}

func newOIDCAuth(cfg OIDCConfig, client *http.Client, log *slog.Logger, now func() time.Time) *oidcAuth {
	cfg = cfg.withDefaults()
	a := &oidcAuth{
		cfg: cfg,
		rules: claimRules{
			nameClaim:            cfg.NameClaim,
			groupsClaim:          cfg.GroupsClaim,
			requiredGroups:       cfg.RequiredGroups,
			groupPrefix:          cfg.GroupPrefix,
			allowUnverifiedEmail: cfg.AllowUnverifiedEmail,
		},
		client: client,
		log:    log,
		now:    now,
	}
	if cfg.JWKSURL != "" {
		a.ks.Store(a.newKeySet(cfg.JWKSURL))
	}
	return a
}

func (a *oidcAuth) newKeySet(url string) *keySet {
	jwks := newJWKSClient(a.client, a.cfg.JWKSMinRefresh, a.now, a.log)
	// go-oidc takes its HTTP client from the context; cancellation of this
	// one is ignored by design.
	ctx := oidc.ClientContext(context.Background(), jwks)
	leeway := a.cfg.Leeway
	v := oidc.NewVerifier(a.cfg.Issuer, oidc.NewRemoteKeySet(ctx, url), &oidc.Config{
		ClientID:             a.cfg.Audience,
		SupportedSigningAlgs: a.cfg.SigningAlgs,
		// go-oidc has no leeway of its own: shifting its clock back lets
		// a token pass exp by up to leeway.
		Now: func() time.Time { return a.now().Add(-leeway) },
	})
	return &keySet{verifier: v, url: url, client: jwks}
}

// keySet returns the verifier, discovering the issuer first if that has not
// succeeded yet. Discovery runs detached from ctx, so that a caller giving up
// does not waste the attempt; at most one runs at a time, and after a failure
// the next starts no sooner than discoveryRetry later.
func (a *oidcAuth) keySet(ctx context.Context) (*keySet, error) {
	if ks := a.ks.Load(); ks != nil {
		return ks, nil
	}
	a.mu.Lock()
	if ks := a.ks.Load(); ks != nil {
		a.mu.Unlock()
		return ks, nil
	}
	if a.inflight == nil {
		now := a.now()
		if !a.lastTry.IsZero() && now.Sub(a.lastTry) < discoveryRetry {
			err := a.lastErr
			a.mu.Unlock()
			return nil, err
		}
		a.lastTry = now
		done := make(chan struct{})
		a.inflight = done
		go func() {
			err := a.discover()
			a.mu.Lock()
			a.lastErr, a.inflight = err, nil
			a.mu.Unlock()
			close(done)
		}()
	}
	done := a.inflight
	a.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if ks := a.ks.Load(); ks != nil {
		return ks, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lastErr == nil {
		return nil, ErrUnavailable // not reached: a failed discovery sets lastErr
	}
	return nil, a.lastErr
}

// discover fetches the issuer's discovery document and installs a verifier
// for the key set it names.
func (a *oidcAuth) discover() error {
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	err := func() error {
		p, err := oidc.NewProvider(oidc.ClientContext(ctx, a.client), a.cfg.Issuer)
		if err != nil {
			return err
		}
		var meta struct {
			JWKSURL string `json:"jwks_uri"`
		}
		if err := p.Claims(&meta); err != nil {
			return fmt.Errorf("read discovery document: %w", err)
		}
		if meta.JWKSURL == "" {
			return errors.New("discovery document has no jwks_uri")
		}
		if err := checkURL(meta.JWKSURL, true); err != nil {
			return fmt.Errorf("discovered jwks_uri: %w", err)
		}
		a.ks.Store(a.newKeySet(meta.JWKSURL))
		a.log.Info("oidc issuer discovered", "issuer", a.cfg.Issuer, "jwks_uri", meta.JWKSURL)
		return nil
	}()
	if err != nil {
		a.log.Warn("oidc discovery failed; JWTs are refused until it succeeds",
			"issuer", a.cfg.Issuer, "retry_after", discoveryRetry.String(), "error", err)
		return fmt.Errorf("discover oidc issuer %s: %w", a.cfg.Issuer, err)
	}
	return nil
}

// check discovers the issuer if needed and fetches its key set once, so that
// a misconfiguration shows at startup. The fetch goes through the throttle:
// the verifier's first fetch soon after is answered from memory.
func (a *oidcAuth) check(ctx context.Context) error {
	ks, err := a.keySet(ctx)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url, nil)
	if err != nil {
		return fmt.Errorf("fetch key set %s: %w", ks.url, err)
	}
	resp, err := ks.client.Do(req)
	if err != nil {
		return fmt.Errorf("fetch key set %s: %w", ks.url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("fetch key set %s: %w", ks.url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch key set %s: status %s", ks.url, resp.Status)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return fmt.Errorf("fetch key set %s: not a JWK set: %w", ks.url, err)
	}
	if len(set.Keys) == 0 {
		return fmt.Errorf("fetch key set %s: no keys", ks.url)
	}
	return nil
}

// verify checks raw's signature, issuer, audience, expiry and algorithm, and
// maps its claims to an Identity.
func (a *oidcAuth) verify(ctx context.Context, raw string) (protocols.Identity, error) {
	ks, err := a.keySet(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return protocols.Identity{}, err
		}
		return protocols.Identity{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	tok, err := ks.verifier.Verify(ctx, raw)
	if err != nil {
		return protocols.Identity{}, err
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return protocols.Identity{}, fmt.Errorf("decode claims: %w", err)
	}
	return a.rules.identity(claims)
}
