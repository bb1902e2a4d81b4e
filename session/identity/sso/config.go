package sso

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session/identity"
)

// Config is the `sso:` block of airlock.yaml: the identity providers people
// sign in with and the credentials a sign-in yields.
type Config struct {
	// BaseURL is the admin listener's URL as browsers and identity
	// providers reach it; redirect and assertion consumer URLs are built
	// on it. Default: approvals.admin_url.
	BaseURL string `yaml:"base_url"`
	// Lifetime of the credential `airlock login` receives; default 8h.
	Lifetime time.Duration `yaml:"lifetime"`
	// WebLifetime of the reviewers' page sign-in; default 8h.
	WebLifetime time.Duration `yaml:"web_lifetime"`
	// Grace is how long sessions opened before a credential expired may
	// still run commands; default 5m. Revocation has no grace.
	Grace time.Duration `yaml:"grace"`
	// RevocationPoll is how often a replica reads revocations made on
	// other replicas; default 2s.
	RevocationPoll time.Duration `yaml:"revocation_poll"`
	// Admins may list and revoke everyone's credentials (identity names,
	// "group:NAME"); everyone else sees only their own.
	Admins []string `yaml:"admins"`
	// ClientHost is the host `airlock login` writes into client settings;
	// default the host it reached the admin listener at.
	ClientHost string `yaml:"client_host"`
	// Providers are the identity providers, in the order they are offered.
	Providers []Provider `yaml:"providers"`
}

// Provider is one identity provider.
type Provider struct {
	// Name identifies the provider in URLs, credentials and records
	// ("okta-oidc"; the identity's method is "sso:okta-oidc").
	Name string `yaml:"name"`
	// Label is shown on the sign-in page; default Name.
	Label string `yaml:"label"`
	// Type is oidc or saml.
	Type string `yaml:"type"`

	// Issuer (oidc) is the issuer URL; its discovery document gives the
	// endpoints, the key set and, if any, the device endpoint.
	Issuer string `yaml:"issuer"`
	// ClientID and ClientSecret (oidc) are Airlock's registration.
	ClientID     string           `yaml:"client_id"`
	ClientSecret protocols.Secret `yaml:"client_secret"`
	// Scopes (oidc); default openid, profile, email.
	Scopes []string `yaml:"scopes"`

	// MetadataURL or MetadataFile (saml) is the identity provider's
	// metadata.
	MetadataURL  string `yaml:"metadata_url"`
	MetadataFile string `yaml:"metadata_file"`
	// EntityID (saml) is Airlock's entity id; default the SP metadata URL,
	// BaseURL + /sso/NAME/metadata.
	EntityID string `yaml:"entity_id"`
	// KeyFile and CertFile (saml) are the service provider's RSA key
	// pair, PEM: the metadata offers the certificate for encryption and
	// encrypted assertions are decrypted with the key. Without them
	// assertions must come unencrypted (signed either way).
	KeyFile  string `yaml:"key_file"`
	CertFile string `yaml:"cert_file"`
	// NameIDFormat (saml) asks for a NameID format: email, persistent,
	// transient or unspecified (default).
	NameIDFormat string `yaml:"name_id_format"`

	// NameClaim holds the identity's name: an OIDC claim or dotted path
	// (default preferred_username), or a SAML attribute's Name or
	// FriendlyName, or NameID (default).
	NameClaim string `yaml:"name_claim"`
	// GroupsClaim holds the groups: an OIDC claim (default groups) or a
	// SAML attribute (default groups).
	GroupsClaim    string   `yaml:"groups_claim"`
	RequiredGroups []string `yaml:"required_groups"`
	// GroupPrefix is put before every group from this provider.
	GroupPrefix string `yaml:"group_prefix"`
	// CAFile is a PEM bundle to trust for this provider instead of the
	// system's.
	CAFile string `yaml:"ca_file"`
}

// Defaults and limits.
const (
	DefaultLifetime       = 8 * time.Hour
	DefaultGrace          = 5 * time.Minute
	DefaultRevocationPoll = 2 * time.Second
	MaxLifetime           = 30 * 24 * time.Hour
)

// Provider types.
const (
	TypeOIDC = "oidc"
	TypeSAML = "saml"
)

// WithDefaults fills in unset fields; base is approvals.admin_url.
func (c Config) WithDefaults(base string) Config {
	if c.BaseURL == "" {
		c.BaseURL = base
	}
	c.BaseURL = strings.TrimSuffix(c.BaseURL, "/")
	if c.Lifetime == 0 {
		c.Lifetime = DefaultLifetime
	}
	if c.WebLifetime == 0 {
		c.WebLifetime = DefaultLifetime
	}
	if c.Grace == 0 {
		c.Grace = DefaultGrace
	}
	if c.RevocationPoll == 0 {
		c.RevocationPoll = DefaultRevocationPoll
	}
	for i := range c.Providers {
		p := &c.Providers[i]
		if p.Label == "" {
			p.Label = p.Name
		}
		if p.GroupsClaim == "" {
			p.GroupsClaim = "groups"
		}
		switch p.Type {
		case TypeOIDC:
			if p.NameClaim == "" {
				p.NameClaim = identity.DefaultNameClaim
			}
			if len(p.Scopes) == 0 {
				p.Scopes = []string{"openid", "profile", "email"}
			}
		case TypeSAML:
			if p.NameClaim == "" {
				p.NameClaim = NameIDClaim
			}
			if p.EntityID == "" {
				p.EntityID = c.BaseURL + "/sso/" + p.Name + "/metadata"
			}
		}
	}
	return c
}

// NameIDClaim names a SAML assertion's subject NameID as a name claim.
const NameIDClaim = "NameID"

// Validate reports every problem of the block at path ("sso").
func (c *Config) Validate(path string) error {
	var errs []error
	add := func(p, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", p, fmt.Sprintf(format, args...)))
	}
	if c.BaseURL != "" {
		if err := checkBaseURL(c.BaseURL); err != nil {
			add(path+".base_url", "%v", err)
		}
	}
	for _, d := range []struct {
		field    string
		v        time.Duration
		min, max time.Duration
	}{
		{"lifetime", c.Lifetime, time.Second, MaxLifetime},
		{"web_lifetime", c.WebLifetime, time.Second, MaxLifetime},
		{"grace", c.Grace, 0, 24 * time.Hour},
		{"revocation_poll", c.RevocationPoll, 100 * time.Millisecond, time.Minute},
	} {
		if d.v != 0 && (d.v < d.min || d.v > d.max) {
			add(path+"."+d.field, "%s out of range (want %s to %s)", d.v, d.min, d.max)
		}
	}
	for i, a := range c.Admins {
		if a == "" || a == "group:" {
			add(fmt.Sprintf("%s.admins[%d]", path, i), "empty entry")
		}
	}
	if len(c.Providers) == 0 {
		add(path+".providers", "no identity provider configured")
	}
	names := map[string]int{}
	for i := range c.Providers {
		p := &c.Providers[i]
		pp := fmt.Sprintf("%s.providers[%d]", path, i)
		if j, dup := names[p.Name]; dup && p.Name != "" {
			add(pp+".name", "%q is already used by providers[%d]", p.Name, j)
		}
		names[p.Name] = i
		errs = append(errs, p.validate(pp))
	}
	return errors.Join(errs...)
}

func (p *Provider) validate(path string) error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", path, field, fmt.Sprintf(format, args...)))
	}
	switch {
	case p.Name == "":
		add("name", "missing (a short name such as okta-oidc)")
	case !validProviderName(p.Name):
		add("name", "%q may contain only lower-case letters, digits and '-' (at most 32)", p.Name)
	}
	switch p.Type {
	case TypeOIDC:
		if p.Issuer == "" {
			add("issuer", "missing (the issuer URL, exactly as in its tokens' iss claim)")
		} else if err := checkBaseURL(p.Issuer); err != nil {
			add("issuer", "%v", err)
		}
		if strings.TrimSpace(p.ClientID) == "" {
			add("client_id", "missing (Airlock's client id at the identity provider)")
		}
		if p.MetadataURL != "" || p.MetadataFile != "" || p.KeyFile != "" || p.CertFile != "" || p.EntityID != "" || p.NameIDFormat != "" {
			add("type", "oidc providers take no SAML fields (metadata_url, metadata_file, entity_id, key_file, cert_file, name_id_format)")
		}
	case TypeSAML:
		if (p.MetadataURL == "") == (p.MetadataFile == "") {
			add("metadata_url", "set exactly one of metadata_url and metadata_file (the identity provider's metadata)")
		} else if p.MetadataURL != "" {
			if err := checkBaseURL(p.MetadataURL); err != nil {
				add("metadata_url", "%v", err)
			}
		}
		if (p.KeyFile == "") != (p.CertFile == "") {
			add("key_file", "key_file and cert_file go together: set both or neither")
		}
		switch p.NameIDFormat {
		case "", "email", "persistent", "transient", "unspecified":
		default:
			add("name_id_format", "unknown format %q (want email, persistent, transient or unspecified)", p.NameIDFormat)
		}
		if p.Issuer != "" || p.ClientID != "" || p.ClientSecret != "" || len(p.Scopes) > 0 {
			add("type", "saml providers take no OIDC fields (issuer, client_id, client_secret, scopes)")
		}
	case "":
		add("type", "missing (oidc or saml)")
	default:
		add("type", "unknown type %q (want oidc or saml)", p.Type)
	}
	if err := p.mapping().Validate(path, "name_claim", "groups_claim"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// mapping is the provider's claim mapping.
func (p *Provider) mapping() identity.ClaimMapping {
	return identity.ClaimMapping{NameClaim: p.NameClaim, GroupsClaim: p.GroupsClaim, RequiredGroups: p.RequiredGroups,
		GroupPrefix: p.GroupPrefix, AllowUnverifiedEmail: p.Type == TypeSAML}
}

// Method is what the identities this provider signs in carry as
// Identity.Method.
func (p *Provider) Method() string { return "sso:" + p.Name }

func validProviderName(s string) bool {
	if len(s) > 32 || s[0] == '-' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// checkBaseURL accepts an https URL, or an http one on a loopback host.
func checkBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL: %v", err)
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" || u.RawQuery != "" {
		return fmt.Errorf("%q must be a plain URL with a host, no credentials, query or fragment", u.Redacted())
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q must use https (http only for loopback hosts)", raw)
	}
	return fmt.Errorf("%q has scheme %q (want https)", raw, u.Scheme)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
