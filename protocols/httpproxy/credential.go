package httpproxy

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"sync"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// credential puts the upstream credential Airlock holds on each request
// it forwards, and knows the secret values it must keep out of every
// response, log and recording.
type credential struct {
	cfg    Credential
	tokens oauth2.TokenSource // OAuth2 client credentials; nil otherwise

	mu     sync.Mutex
	issued []string // OAuth2 access tokens handed out, the newest last
}

// maxIssued bounds the access tokens remembered for scrubbing.
const maxIssued = 4

func newCredential(c Credential, client *http.Client) *credential {
	cr := &credential{cfg: c}
	if o := c.OAuth2; o != nil {
		cc := &clientcredentials.Config{ClientID: o.ClientID, ClientSecret: o.ClientSecret.Reveal(), TokenURL: o.TokenURL,
			Scopes: o.Scopes, AuthStyle: oauth2.AuthStyleAutoDetect}
		if len(o.Params) > 0 {
			cc.EndpointParams = map[string][]string{}
			for k, v := range o.Params {
				cc.EndpointParams[k] = []string{v}
			}
		}
		// The token source lives as long as the process: its context only
		// carries the HTTP client its fetches use.
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, client)
		cr.tokens = oauth2.ReuseTokenSource(nil, cc.TokenSource(ctx))
	}
	return cr
}

// headerName is the header the credential sets, "" for none.
func (c *credential) headerName() string {
	switch {
	case c.cfg.Bearer != "", c.cfg.Basic != nil, c.cfg.OAuth2 != nil:
		return "Authorization"
	case c.cfg.Header != nil:
		return c.cfg.Header.Name
	}
	return ""
}

// apply sets the credential on an outgoing request, replacing whatever
// the caller put in its place. An OAuth2 token is fetched or refreshed
// first when it is missing or about to expire.
func (c *credential) apply(r *http.Request) error {
	switch cf := c.cfg; {
	case cf.Bearer != "":
		r.Header.Set("Authorization", "Bearer "+cf.Bearer.Reveal())
	case cf.Header != nil:
		r.Header.Set(cf.Header.Name, cf.Header.Value.Reveal())
	case cf.Basic != nil:
		r.SetBasicAuth(cf.Basic.Username, cf.Basic.Password.Reveal())
	case cf.Query != nil:
		q := r.URL.Query()
		q.Set(cf.Query.Name, cf.Query.Value.Reveal())
		r.URL.RawQuery = q.Encode()
	case c.tokens != nil:
		tok, err := c.tokens.Token()
		if err != nil {
			// The token endpoint's answer may quote the client secret.
			return fmt.Errorf("oauth2 token for the upstream could not be fetched")
		}
		c.note(tok.AccessToken)
		tok.SetAuthHeader(r)
	}
	return nil
}

func (c *credential) note(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := len(c.issued); n > 0 && c.issued[n-1] == token {
		return
	}
	c.issued = append(c.issued, token)
	if len(c.issued) > maxIssued {
		c.issued = c.issued[len(c.issued)-maxIssued:]
	}
}

// minSecret is the shortest value scrubbed: shorter ones would match
// ordinary text and say nothing of the secret.
const minSecret = 6

// secrets returns the values that must never reach a caller: the
// credential as sent, and its parts.
func (c *credential) secrets() []string {
	var out []string
	add := func(vs ...string) {
		for _, v := range vs {
			if len(v) >= minSecret {
				out = append(out, v)
			}
		}
	}
	switch cf := c.cfg; {
	case cf.Bearer != "":
		add(cf.Bearer.Reveal())
	case cf.Header != nil:
		add(cf.Header.Value.Reveal())
	case cf.Basic != nil:
		pair := cf.Basic.Username + ":" + cf.Basic.Password.Reveal()
		add(cf.Basic.Password.Reveal(), base64.StdEncoding.EncodeToString([]byte(pair)))
	case cf.Query != nil:
		add(cf.Query.Value.Reveal())
	case cf.OAuth2 != nil:
		add(cf.OAuth2.ClientSecret.Reveal())
		c.mu.Lock()
		add(c.issued...)
		c.mu.Unlock()
	}
	return out
}

// queryParam is the query parameter the credential sets, "" for none.
func (c *credential) queryParam() string {
	if c.cfg.Query != nil {
		return c.cfg.Query.Name
	}
	return ""
}
