package sso

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/airlock-gw/airlock/protocols"
)

// samlProvider is Airlock as a SAML service provider of one identity
// provider. Its metadata is read on first use and retried while the
// identity provider does not answer.
type samlProvider struct {
	cfg    Provider
	base   string
	client *http.Client
	log    *slog.Logger
	now    func() time.Time
	clock  *dsig.Clock // nil: the real clock
	replay saml.AssertionReplayCache
	key    crypto.Signer
	cert   *x509.Certificate

	mu      sync.Mutex
	sp      *saml.ServiceProvider
	lastTry time.Time
	lastErr error
}

func newSAMLProvider(cfg Provider, base string, client *http.Client, log *slog.Logger, now func() time.Time,
	clock *dsig.Clock, replay saml.AssertionReplayCache) (*samlProvider, error) {
	p := &samlProvider{cfg: cfg, base: base, client: client, log: log, now: now, clock: clock, replay: replay}
	if cfg.KeyFile != "" {
		pair, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("sso provider %s: key_file and cert_file: %w", cfg.Name, err)
		}
		signer, ok := pair.PrivateKey.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("sso provider %s: key_file: not a signing key", cfg.Name)
		}
		p.key, p.cert = signer, pair.Leaf
		if p.cert == nil {
			if p.cert, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
				return nil, fmt.Errorf("sso provider %s: cert_file: %w", cfg.Name, err)
			}
		}
	}
	return p, nil
}

// serviceProvider returns the configured crewjam ServiceProvider, reading
// the identity provider's metadata first if needed.
func (p *samlProvider) serviceProvider(ctx context.Context) (*saml.ServiceProvider, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sp != nil {
		return p.sp, nil
	}
	if !p.lastTry.IsZero() && p.now().Sub(p.lastTry) < discoveryRetry {
		return nil, p.lastErr
	}
	p.lastTry = p.now()
	md, err := p.metadata(ctx)
	if err != nil {
		p.lastErr = fmt.Errorf("read the identity provider's metadata: %w", err)
		p.log.Warn("identity provider metadata unavailable; sign-ins with it fail until it is", "provider", p.cfg.Name, "err", err)
		return nil, p.lastErr
	}
	root := p.base + "/sso/" + p.cfg.Name
	metaURL, _ := url.Parse(root + "/metadata")
	acsURL, _ := url.Parse(root + "/acs")
	sp := &saml.ServiceProvider{
		EntityID:    p.cfg.EntityID,
		Key:         p.key,
		Certificate: p.cert,
		MetadataURL: *metaURL,
		AcsURL:      *acsURL,
		IDPMetadata: md,
		HTTPClient:  p.client,
		// Only responses to requests this SP made, each taken once.
		AllowIDPInitiated:                false,
		ReplayCache:                      p.replay,
		AssertionConsumerServiceBindings: []string{saml.HTTPPostBinding},
		Clock:                            p.clock,
	}
	// AuthnRequests go unsigned: identity providers check the ACS URL
	// against the registered metadata anyway, and some (crewjam's among
	// them) post a request back through their login form without the
	// redirect binding's signature. The key decrypts assertions.
	switch p.cfg.NameIDFormat {
	case "email":
		sp.AuthnNameIDFormat = saml.EmailAddressNameIDFormat
	case "persistent":
		sp.AuthnNameIDFormat = saml.PersistentNameIDFormat
	case "transient":
		sp.AuthnNameIDFormat = saml.TransientNameIDFormat
	default:
		sp.AuthnNameIDFormat = saml.UnspecifiedNameIDFormat
	}
	p.sp = sp
	p.log.Info("identity provider metadata read", "provider", p.cfg.Name, "entity_id", md.EntityID)
	return sp, nil
}

func (p *samlProvider) metadata(ctx context.Context) (*saml.EntityDescriptor, error) {
	if p.cfg.MetadataFile != "" {
		b, err := os.ReadFile(p.cfg.MetadataFile)
		if err != nil {
			return nil, err
		}
		return samlsp.ParseMetadata(b)
	}
	u, err := url.Parse(p.cfg.MetadataURL)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return samlsp.FetchMetadata(ctx, p.client, *u)
}

// authURL makes an AuthnRequest and returns the HTTP-Redirect URL that
// carries it, with its ID for the response's InResponseTo.
func (p *samlProvider) authURL(ctx context.Context, relayState string) (redirect, requestID string, err error) {
	sp, err := p.serviceProvider(ctx)
	if err != nil {
		return "", "", err
	}
	req, err := sp.MakeAuthenticationRequest(sp.GetSSOBindingLocation(saml.HTTPRedirectBinding), saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	if err != nil {
		return "", "", fmt.Errorf("make the authentication request: %w", err)
	}
	u, err := req.Redirect(relayState, sp)
	if err != nil {
		return "", "", fmt.Errorf("make the authentication request: %w", err)
	}
	return u.String(), req.ID, nil
}

// parse verifies the response r carries (signature, issuer, destination,
// audience, validity, InResponseTo requestID, replay) and maps the
// assertion to an identity.
func (p *samlProvider) parse(ctx context.Context, r *http.Request, requestID string) (protocols.Identity, error) {
	sp, err := p.serviceProvider(ctx)
	if err != nil {
		return protocols.Identity{}, err
	}
	a, err := sp.ParseResponse(r, []string{requestID})
	if err != nil {
		return protocols.Identity{}, assertionError(err)
	}
	claims := map[string]any{}
	if a.Subject != nil && a.Subject.NameID != nil {
		claims[NameIDClaim] = a.Subject.NameID.Value
	}
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			var v any
			if len(at.Values) == 1 {
				v = at.Values[0].Value
			} else {
				vs := make([]any, 0, len(at.Values))
				for _, x := range at.Values {
					vs = append(vs, x.Value)
				}
				v = vs
			}
			for _, k := range []string{at.Name, at.FriendlyName} {
				if _, taken := claims[k]; k != "" && !taken {
					claims[k] = v
				}
			}
		}
	}
	return p.cfg.mapping().Identity(claims, p.cfg.Method())
}

// metadataXML is the service provider's metadata for the identity
// provider's administrator.
func (p *samlProvider) metadataXML(ctx context.Context) (*saml.EntityDescriptor, error) {
	sp, err := p.serviceProvider(ctx)
	if err != nil {
		return nil, err
	}
	return sp.Metadata(), nil
}

// assertionError names the check a SAML response failed. crewjam keeps
// the detail in InvalidResponseError.PrivateErr, classified by sentinels.
func assertionError(err error) error {
	detail := err
	var ivr *saml.InvalidResponseError
	if errors.As(err, &ivr) && ivr.PrivateErr != nil {
		detail = ivr.PrivateErr
	}
	for _, c := range []struct {
		sentinel error
		msg      string
	}{
		{saml.ErrAssertionReplayed, "the assertion was used already (replayed)"},
		{ErrReplayed, "the assertion was used already (replayed)"},
		{saml.ErrInvalidSignature, "the assertion's signature is invalid (tampered, or not signed by the identity provider)"},
		{saml.ErrUntrustedCertificate, "the assertion is signed by a certificate the identity provider's metadata does not list"},
		{saml.ErrExpired, "the assertion has expired"},
		{saml.ErrNotYetValid, "the assertion is not valid yet (clock skew?)"},
		{saml.ErrAudienceMismatch, "the assertion was issued for another service provider (audience)"},
		{saml.ErrRequestIDMismatch, "the assertion answers no sign-in started here (InResponseTo)"},
		{saml.ErrDestinationMismatch, "the response was addressed to another service provider (destination)"},
		{saml.ErrIssuerMismatch, "the response comes from another identity provider (issuer)"},
		{saml.ErrDecryptionFailed, "the assertion cannot be decrypted with this service provider's key"},
	} {
		if errors.Is(detail, c.sentinel) {
			return fmt.Errorf("%s: %w", c.msg, detail)
		}
	}
	var bad saml.ErrBadStatus
	if errors.As(detail, &bad) {
		return fmt.Errorf("the identity provider refused the sign-in (status %s)", bad.Status)
	}
	return fmt.Errorf("the identity provider's response was refused: %w", detail)
}

// replayCache keeps seen assertion IDs in the shared store, so that no
// replica accepts an assertion twice.
type replayCache struct {
	store    *Store
	provider string
}

// Consume implements saml.AssertionReplayCache.
func (c replayCache) Consume(id string, until time.Time) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.store.consume(ctx, "saml-id", c.provider+"\x00"+id, until); err != nil {
		if errors.Is(err, ErrReplayed) {
			return saml.ErrAssertionReplayed
		}
		return err
	}
	return nil
}
