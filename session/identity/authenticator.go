package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

// maxSecretLen bounds a secret before it is hashed or parsed; real JWTs are a
// few kilobytes.
const maxSecretLen = 16 << 10

// Options are an Authenticator's collaborators; the zero value is usable.
type Options struct {
	// Logger receives OIDC discovery and key set messages (warn, info) and
	// the reasons of refusals (debug). Nil discards them.
	Logger *slog.Logger
	// HTTPClient, when set, supplies the transport and timeout for requests
	// to the identity provider (oidc.ca_file is then ignored). Redirects and
	// response sizes are bounded regardless.
	HTTPClient *http.Client

	// now replaces the clock in tests.
	now func() time.Time
}

// Authenticator checks callers' secrets against the static identities and
// the OIDC issuer of a Config. It implements protocols.Authenticator and is
// safe for concurrent use.
type Authenticator struct {
	tokens *tokenStore
	oidc   *oidcAuth // nil when no issuer is configured
	creds  CredentialStore
	log    *slog.Logger
}

var _ protocols.Authenticator = (*Authenticator)(nil)

// New validates cfg and returns its Authenticator. It does no network I/O:
// call Discover to check the OIDC issuer at startup.
func New(cfg Config, opts Options) (*Authenticator, error) {
	if err := cfg.Validate(""); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.now
	if now == nil {
		now = time.Now
	}
	tokens, err := newTokenStore(cfg.Identities)
	if err != nil {
		return nil, err
	}
	a := &Authenticator{tokens: tokens, log: log}
	if cfg.OIDC != nil {
		client, err := newHTTPClient(opts.HTTPClient, cfg.OIDC.CAFile)
		if err != nil {
			return nil, err
		}
		a.oidc = newOIDCAuth(*cfg.OIDC, client, log, now)
	}
	return a, nil
}

// Discover checks the OIDC issuer now: discovery (unless jwks_url is set)
// and one fetch of the key set. It returns nil when no issuer is configured.
// An error is worth logging but not fatal: authentication keeps retrying
// and refuses JWTs until the issuer answers.
func (a *Authenticator) Discover(ctx context.Context) error {
	if a.oidc == nil {
		return nil
	}
	return a.oidc.check(ctx)
}

// Authenticate implements protocols.Authenticator. name is the identity the
// client gave (Postgres or MySQL user, Redis AUTH) or empty when the client
// gives only a secret (HTTP bearer). A JWT-shaped secret is verified as an
// OIDC token when an issuer is configured and its name claim must then equal
// name when one is given; any other secret is a static token. Every refusal
// is protocols.ErrAuthFailed, wrapped with ErrUnavailable when the issuer
// could not be discovered, or with ctx's error when ctx ended.
func (a *Authenticator) Authenticate(ctx context.Context, name, secret string) (protocols.Identity, error) {
	if err := ctx.Err(); err != nil {
		return protocols.Identity{}, fmt.Errorf("%w: %w", protocols.ErrAuthFailed, err)
	}
	if secret == "" || len(secret) > maxSecretLen {
		return a.refuse(ctx, "secret empty or too long", "")
	}
	if a.oidc != nil && looksLikeJWT(secret) {
		return a.authenticateJWT(ctx, name, secret)
	}
	if a.creds != nil && IsShortLived(secret) {
		if id, ok, err := a.authenticateShortLived(ctx, name, secret); ok {
			return id, err
		}
	}
	var (
		id protocols.Identity
		ok bool
	)
	if name == "" {
		id, ok = a.tokens.find(secret)
	} else {
		id, ok = a.tokens.lookup(name, secret)
	}
	if !ok {
		// The name is logged only when it is a configured identity: a
		// client may have put its token in the user field.
		known := ""
		if a.log.Enabled(ctx, slog.LevelDebug) && a.tokens.has(name) {
			known = name
		}
		return a.refuse(ctx, "static token does not match", known)
	}
	return id, nil
}

// AuthenticateProof authenticates a caller who proved knowledge of the
// static token of identity name without sending it: verify is called with
// the SHA-256 of that identity's token (a MySQL caching_sha2_password
// scramble is checked this way). For an unknown name verify is called with
// a hash no token has, so the time taken does not tell whether the name
// exists. Every refusal is protocols.ErrAuthFailed. It implements
// session.ProofAuthenticator without this package knowing any protocol.
func (a *Authenticator) AuthenticateProof(name string, verify func(tokenSHA256 [32]byte) bool) (protocols.Identity, error) {
	id, ok := a.tokens.prove(name, verify)
	if !ok {
		return a.refuse(context.Background(), "static token proof does not match", "")
	}
	return id, nil
}

func (a *Authenticator) authenticateJWT(ctx context.Context, name, raw string) (protocols.Identity, error) {
	id, err := a.oidc.verify(ctx, raw)
	if err != nil {
		// go-oidc's messages name the failed check (issuer, audience,
		// expiry, signature), never the token.
		a.log.DebugContext(ctx, "authentication refused", "method", "oidc", "reason", err.Error())
		if ctx.Err() != nil {
			return protocols.Identity{}, fmt.Errorf("%w: %w", protocols.ErrAuthFailed, ctx.Err())
		}
		if errors.Is(err, ErrUnavailable) {
			return protocols.Identity{}, fmt.Errorf("%w: %w", protocols.ErrAuthFailed, ErrUnavailable)
		}
		return protocols.Identity{}, protocols.ErrAuthFailed
	}
	if a.tokens.has(id.Name) {
		// An identity provider user must not become a machine identity
		// by choosing its name.
		return a.refuse(ctx, "oidc name is also a static identity", id.Name)
	}
	if name != "" && name != id.Name {
		return a.refuse(ctx, "given name does not match the token's name claim", id.Name)
	}
	return id, nil
}

// refuse logs why at debug level and returns the uniform error. identity is
// a name that is safe to log, or empty. Below debug level nothing depends on
// the name, so that a refusal costs the same whether the name exists.
func (a *Authenticator) refuse(ctx context.Context, reason, identity string) (protocols.Identity, error) {
	if a.log.Enabled(ctx, slog.LevelDebug) {
		a.log.DebugContext(ctx, "authentication refused", "reason", reason, "identity", identity)
	}
	return protocols.Identity{}, protocols.ErrAuthFailed
}
