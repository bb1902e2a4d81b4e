package sso

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/airlock-gw/airlock/protocols"
)

// Options are a Service's collaborators.
type Options struct {
	// Config is the sso block with its defaults (Config.WithDefaults).
	Config Config
	Store  *Store
	// Auth authenticates the bearer tokens of the API under /api/sso.
	Auth protocols.Authenticator
	// IsStatic reports whether a name belongs to a static identity; such
	// a name is never signed in by single sign-on.
	IsStatic func(name string) bool
	// SignIn completes a sign-in to the reviewers' page: it keeps token in
	// the page's cookie and redirects to next. Nil: the page does not sign
	// in with single sign-on.
	SignIn func(w http.ResponseWriter, r *http.Request, token, next string)
	// Connections and Listeners (the listen block) say what `airlock
	// login` may write client settings for.
	Connections map[string]*protocols.Connection
	Listeners   map[string]string
	Log         *slog.Logger
	Metrics     *Metrics
	// HTTPClient, when set, talks to every identity provider (tests).
	HTTPClient *http.Client

	// clock replaces the time source of sign-ins and assertion checks in
	// tests.
	clock clockwork.Clock
}

// Service runs the single sign-on flows and the credential API on the
// admin listener.
type Service struct {
	opt       Options
	cfg       Config
	store     *Store
	log       *slog.Logger
	now       func() time.Time
	providers []*provider
	byName    map[string]*provider
	admins    protocols.Principals

	mu        sync.Mutex
	listeners map[string]string // by listener name, as configured or listening
}

// provider is one configured identity provider: exactly one of oidc and
// saml is set.
type provider struct {
	cfg  Provider
	oidc *oidcProvider
	saml *samlProvider
}

// New returns the Service for o.Config. It does no network I/O: identity
// providers are discovered on first use (and by Run).
func New(o Options) (*Service, error) {
	if o.Store == nil || o.Auth == nil {
		return nil, errors.New("sso: a store and an authenticator are required")
	}
	if err := o.Config.Validate("sso"); err != nil {
		return nil, err
	}
	if u, err := url.Parse(o.Config.BaseURL); o.Config.BaseURL == "" || err != nil || u.Port() == "0" {
		return nil, errors.New("sso.base_url: missing (the admin listener's URL as browsers and identity providers reach it, with its real port)")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.IsStatic == nil {
		o.IsStatic = func(string) bool { return false }
	}
	s := &Service{opt: o, cfg: o.Config, store: o.Store, log: o.Log, now: time.Now,
		byName: map[string]*provider{}, admins: protocols.Principals(o.Config.Admins), listeners: map[string]string{}}
	for k, v := range o.Listeners {
		s.listeners[k] = v
	}
	var clock *dsig.Clock
	if o.clock != nil {
		s.now, clock = o.clock.Now, dsig.NewFakeClock(o.clock)
	}
	for _, pc := range o.Config.Providers {
		client, err := providerClient(o.HTTPClient, pc)
		if err != nil {
			return nil, err
		}
		log := o.Log.With("provider", pc.Name)
		p := &provider{cfg: pc}
		switch pc.Type {
		case TypeOIDC:
			p.oidc = newOIDCProvider(pc, s.cfg.BaseURL, client, log, s.now)
		case TypeSAML:
			if p.saml, err = newSAMLProvider(pc, s.cfg.BaseURL, client, log, s.now, clock,
				replayCache{store: o.Store, provider: pc.Name}); err != nil {
				return nil, err
			}
		}
		s.providers = append(s.providers, p)
		s.byName[pc.Name] = p
	}
	return s, nil
}

// providerClient is the HTTP client for one identity provider: bounded in
// time, trusting ca_file when set.
func providerClient(override *http.Client, pc Provider) (*http.Client, error) {
	if override != nil {
		return override, nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if pc.CAFile != "" {
		pem, err := os.ReadFile(pc.CAFile)
		if err != nil {
			return nil, fmt.Errorf("sso provider %s: ca_file: %w", pc.Name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("sso provider %s: ca_file: no PEM certificate", pc.Name)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// Run discovers every identity provider once, so that a misconfiguration
// shows in the log at startup, then keeps the credential store's cache
// current until ctx ends.
func (s *Service) Run(ctx context.Context) {
	go func() {
		for _, p := range s.providers {
			var err error
			switch {
			case p.oidc != nil:
				_, err = p.oidc.discovered(ctx)
			case p.saml != nil:
				_, err = p.saml.serviceProvider(ctx)
			}
			if err != nil {
				s.log.Warn("identity provider not ready; will retry on first sign-in", "provider", p.cfg.Name, "err", err)
			}
		}
	}()
	s.store.Run(ctx)
}

// Listening records the address a listener actually listens on (a
// configured port 0 is only known then), for the client settings of
// `airlock login`.
func (s *Service) Listening(name, addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listeners[name] = addr
}

// listener returns the address of listener name.
func (s *Service) listener(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listeners[name]
}

// Link is a provider as the reviewers' page offers it: Path starts a
// sign-in (the page appends ?next=).
type Link struct {
	Name, Label, Path string
}

// Links are the providers in their configured order.
func (s *Service) Links() []Link {
	var out []Link
	for _, p := range s.providers {
		out = append(out, Link{Name: p.cfg.Name, Label: p.cfg.Label, Path: "/sso/" + p.cfg.Name + "/login"})
	}
	return out
}

// Mount registers the flows under /sso/ and the API under /api/sso/.
func (s *Service) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /sso/{provider}/login", s.startWeb)
	mux.HandleFunc("GET /sso/{provider}/cli", s.startCLI)
	mux.HandleFunc("GET /sso/{provider}/callback", s.callback)
	mux.HandleFunc("POST /sso/{provider}/acs", s.acs)
	mux.HandleFunc("GET /sso/{provider}/metadata", s.metadata)
	mux.HandleFunc("GET /api/sso/providers", s.apiProviders)
	mux.HandleFunc("POST /api/sso/token", s.apiToken)
	mux.HandleFunc("POST /api/sso/device", s.apiDeviceStart)
	mux.HandleFunc("POST /api/sso/device/token", s.apiDeviceToken)
	mux.HandleFunc("GET /api/sso/credentials", s.apiList)
	mux.HandleFunc("POST /api/sso/credentials/{id}/revoke", s.apiRevoke)
	mux.HandleFunc("POST /api/sso/logout", s.apiLogout)
}

// RevokeToken ends the credential whose secret is token, if it is one
// this store issued: the reviewers' page calls it when a browser signs out.
func (s *Service) RevokeToken(ctx context.Context, token string) {
	c, err := s.store.Find(ctx, token)
	if err != nil {
		return
	}
	if _, err := s.store.Revoke(ctx, c.ID, c.Identity.Name); err != nil {
		s.log.Warn("revoking a signed-out credential failed", "credential", c.ID, "err", err)
	}
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
<title>{{.Title}} · Airlock</title></head>
<body><main><h1 id="title">{{.Title}}</h1><p id="message">{{.Message}}</p>
{{with .Hint}}<p>{{.}}</p>{{end}}</main></body></html>
`))

// page answers a browser with a short message page under a CSP that
// allows nothing.
func page(w http.ResponseWriter, code int, title, msg, hint string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = pageTemplate.Execute(w, struct{ Title, Message, Hint string }{title, msg, hint})
}
