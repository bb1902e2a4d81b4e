package sso

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	oidcP := Provider{Name: "okta", Type: TypeOIDC, Issuer: "https://corp.okta.com", ClientID: "abc"}
	samlP := Provider{Name: "corp-saml", Type: TypeSAML, MetadataURL: "https://idp.corp/metadata"}
	for _, tc := range []struct {
		name string
		mod  func(c *Config)
		want []string // substrings of the error; none: valid
	}{
		{"valid", func(c *Config) {}, nil},
		{"no providers", func(c *Config) { c.Providers = nil }, []string{"sso.providers: no identity provider"}},
		{"duplicate name", func(c *Config) { c.Providers[1].Name = "okta" }, []string{`sso.providers[1].name: "okta" is already used by providers[0]`}},
		{"bad name", func(c *Config) { c.Providers[0].Name = "Okta IdP" }, []string{"sso.providers[0].name"}},
		{"unknown type", func(c *Config) { c.Providers[0].Type = "ldap" }, []string{`sso.providers[0].type: unknown type "ldap"`}},
		{"oidc without issuer and client", func(c *Config) { c.Providers[0].Issuer, c.Providers[0].ClientID = "", "" },
			[]string{"sso.providers[0].issuer: missing", "sso.providers[0].client_id: missing"}},
		{"http issuer", func(c *Config) { c.Providers[0].Issuer = "http://idp.corp" }, []string{"must use https"}},
		{"saml fields on oidc", func(c *Config) { c.Providers[0].MetadataURL = "https://x" }, []string{"oidc providers take no SAML fields"}},
		{"saml without metadata", func(c *Config) { c.Providers[1].MetadataURL = "" }, []string{"set exactly one of metadata_url and metadata_file"}},
		{"saml key without cert", func(c *Config) { c.Providers[1].KeyFile = "k.pem" }, []string{"key_file and cert_file go together"}},
		{"saml name id format", func(c *Config) { c.Providers[1].NameIDFormat = "x509" }, []string{"unknown format"}},
		{"lifetime", func(c *Config) { c.Lifetime = 40 * 24 * time.Hour }, []string{"sso.lifetime: 960h0m0s out of range"}},
		{"poll", func(c *Config) { c.RevocationPoll = time.Millisecond }, []string{"sso.revocation_poll"}},
		{"base url", func(c *Config) { c.BaseURL = "http://airlock.corp" }, []string{"sso.base_url"}},
		{"groups", func(c *Config) { c.Providers[0].RequiredGroups = []string{"a", "a"} }, []string{"sso.providers[0].required_groups[1]: duplicate"}},
		{"admins", func(c *Config) { c.Admins = []string{""} }, []string{"sso.admins[0]: empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{BaseURL: "https://airlock.corp", Providers: []Provider{oidcP, samlP}}
			tc.mod(&c)
			err := c.Validate("sso")
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{Providers: []Provider{{Name: "okta", Type: TypeOIDC}, {Name: "corp", Type: TypeSAML}}}.WithDefaults("https://airlock.corp:19090/")
	if c.BaseURL != "https://airlock.corp:19090" || c.Lifetime != 8*time.Hour || c.Grace != 5*time.Minute || c.RevocationPoll != 2*time.Second {
		t.Fatalf("%+v", c)
	}
	o, s := c.Providers[0], c.Providers[1]
	if o.NameClaim != "preferred_username" || o.GroupsClaim != "groups" || len(o.Scopes) != 3 || o.Label != "okta" {
		t.Fatalf("oidc %+v", o)
	}
	if s.NameClaim != NameIDClaim || s.EntityID != "https://airlock.corp:19090/sso/corp/metadata" {
		t.Fatalf("saml %+v", s)
	}
	if o.Method() != "sso:okta" {
		t.Fatal(o.Method())
	}
}
