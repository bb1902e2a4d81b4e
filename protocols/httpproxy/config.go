package httpproxy

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/sqlrisk/httpreq"
)

// Settings are the engine's own section (`http:` in airlock.yaml).
type Settings struct {
	// Mode is "inspect" (default: every request through the session flow)
	// or "decode" (the proxy forwards with the credential injected, but
	// classifies, masks and records nothing and allows everything; for
	// measurement only).
	Mode string `yaml:"mode"`
	// Domain, when set, also serves connection NAME at the host
	// NAME.<domain>, for applications that need their own root.
	Domain string `yaml:"domain"`
	// SessionIdle closes a caller's session on a connection after this
	// long without a request (default 1m); SessionRequests after this many
	// requests (default 1000), so that one recording stays readable.
	SessionIdle     time.Duration `yaml:"session_idle"`
	SessionRequests int           `yaml:"session_requests"`
	// SessionMaxIdlePerCaller bounds the idle sessions kept for one caller
	// (default 32): a caller with N requests in flight keeps about N
	// sessions and reuses them, instead of opening a session (and its
	// recording) for most requests. Sessions a burst leaves beyond the
	// caller's steady concurrency close after SessionIdle.
	SessionMaxIdlePerCaller int `yaml:"session_max_idle_per_caller"`
	// BodyTimeout bounds the reading of a request body Airlock inspects
	// before deciding (default 30s): a client that trickles it is cut.
	BodyTimeout time.Duration `yaml:"body_timeout"`
	// ConnectTimeout bounds dialing an upstream and its TLS handshake
	// (default 10s); ResponseTimeout the wait for an upstream's response
	// headers (default 10m: a model may think that long).
	ConnectTimeout  time.Duration `yaml:"connect_timeout"`
	ResponseTimeout time.Duration `yaml:"response_timeout"`
}

func (s *Settings) defaults() {
	if s.Mode == "" {
		s.Mode = "inspect"
	}
	if s.SessionIdle == 0 {
		s.SessionIdle = time.Minute
	}
	if s.SessionRequests == 0 {
		s.SessionRequests = 1000
	}
	if s.SessionMaxIdlePerCaller == 0 {
		s.SessionMaxIdlePerCaller = 32
	}
	if s.BodyTimeout == 0 {
		s.BodyTimeout = 30 * time.Second
	}
	if s.ConnectTimeout == 0 {
		s.ConnectTimeout = 10 * time.Second
	}
	if s.ResponseTimeout == 0 {
		s.ResponseTimeout = 10 * time.Minute
	}
}

func (s *Settings) validate() error {
	var errs []error
	switch s.Mode {
	case "inspect", "decode":
	case "relay":
		errs = append(errs, errors.New(`mode: relay is not offered for http (the proxy reads every request to route it and inject its credential); use decode`))
	default:
		errs = append(errs, fmt.Errorf("mode: unknown mode %q (want inspect or decode)", s.Mode))
	}
	if s.Domain != "" && (strings.ContainsAny(s.Domain, "/:@ ") || strings.HasPrefix(s.Domain, ".")) {
		errs = append(errs, fmt.Errorf("domain: %q is not a host name (want e.g. gw.example.com)", s.Domain))
	}
	for name, d := range map[string]time.Duration{"session_idle": s.SessionIdle, "body_timeout": s.BodyTimeout,
		"connect_timeout": s.ConnectTimeout, "response_timeout": s.ResponseTimeout} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative", name))
		}
	}
	if s.SessionRequests < 0 {
		errs = append(errs, errors.New("session_requests: must not be negative"))
	}
	if s.SessionMaxIdlePerCaller < 0 || s.SessionMaxIdlePerCaller > maxIdleCeiling {
		errs = append(errs, fmt.Errorf("session_max_idle_per_caller: must be between 1 and %d", maxIdleCeiling))
	}
	return errors.Join(errs...)
}

// Presets.
const (
	PresetOpenAI    = "openai"
	PresetAnthropic = "anthropic"
	PresetGraphQL   = "graphql"
	PresetGRPC      = "grpc"
)

// Upstream is one connection's upstream block.
type Upstream struct {
	// URL is the base URL requests are forwarded under:
	// /proxy/NAME/v1/x goes to URL + /v1/x.
	URL string `yaml:"url"`
	// Preset is openai, anthropic, graphql or grpc (empty: a plain API).
	Preset     string     `yaml:"preset"`
	Credential Credential `yaml:"credential"`
	TLS        TLS        `yaml:"tls"`
	// Routes classify requests (sqlrisk/httpreq): method and path
	// pattern, or GraphQL root field, to a rule and a risk.
	Routes []httpreq.Route `yaml:"routes"`
	// GraphQL lists the paths of GraphQL endpoints (the graphql preset
	// defaults to every path).
	GraphQL []string `yaml:"graphql"`
	Body    Body     `yaml:"body"`
	// Review is how a request that needs approval waits: retry (default:
	// refused with 409 until approved, then the identical request runs
	// once) or hold (the request waits for the decision). A caller may ask
	// for hold with "Prefer: wait".
	Review string `yaml:"review"`
	// MaskRequests masks request bodies before they leave (default: on for
	// the LLM presets); OnSecret says what a request body the detectors
	// find something in gets: mask (default) or refuse.
	MaskRequests *bool  `yaml:"mask_requests"`
	OnSecret     string `yaml:"on_secret"`
	// Binary says what happens to response bodies masking cannot read
	// (images, archives, octet streams): pass (default) or refuse.
	Binary string `yaml:"binary"`
	// CallerHeader also takes the caller's Airlock token from this header
	// (the anthropic preset: x-api-key), for SDKs that send their key
	// there; it is removed before forwarding.
	CallerHeader string `yaml:"caller_header"`
	// Descriptors is a protobuf FileDescriptorSet (protoc
	// --descriptor_set_out --include_imports) of a gRPC upstream's
	// services: its messages are then masked and recorded; Reflection
	// asks the upstream's server reflection instead.
	Descriptors string `yaml:"descriptors"`
	Reflection  bool   `yaml:"reflection"`
	// Models are the model names usage metrics name (others count as
	// "other"); ToolSQL the SQL dialect of tool calls' statements
	// (postgres, default, or mysql).
	Models  []string `yaml:"models"`
	ToolSQL string   `yaml:"tool_sql"`
}

// Credential is what Airlock holds for the upstream: exactly one kind.
type Credential struct {
	// Bearer is sent as "Authorization: Bearer <token>".
	Bearer protocols.Secret `yaml:"bearer"`
	// Header is any header: X-API-Key, or Authorization with a scheme.
	Header *HeaderCredential `yaml:"header"`
	Basic  *BasicCredential  `yaml:"basic"`
	// Query is a query parameter (?api_key=…).
	Query  *QueryCredential  `yaml:"query"`
	OAuth2 *OAuth2Credential `yaml:"oauth2"`
}

// HeaderCredential is a header Airlock sets on every request.
type HeaderCredential struct {
	Name  string           `yaml:"name"`
	Value protocols.Secret `yaml:"value"`
}

// BasicCredential is HTTP basic authentication.
type BasicCredential struct {
	Username string           `yaml:"username"`
	Password protocols.Secret `yaml:"password"`
}

// QueryCredential is a query parameter Airlock adds to every request.
type QueryCredential struct {
	Name  string           `yaml:"name"`
	Value protocols.Secret `yaml:"value"`
}

// OAuth2Credential is an OAuth 2.0 client-credentials grant (RFC 6749
// section 4.4): Airlock fetches the token and refreshes it before it
// expires.
type OAuth2Credential struct {
	TokenURL     string            `yaml:"token_url"`
	ClientID     string            `yaml:"client_id"`
	ClientSecret protocols.Secret  `yaml:"client_secret"`
	Scopes       []string          `yaml:"scopes"`
	Params       map[string]string `yaml:"params"`
}

// TLS configures TLS to an https upstream.
type TLS struct {
	// Mode is verify-full (default: the certificate must be valid for the
	// host) or require (encrypted, the certificate unchecked).
	Mode       string `yaml:"mode"`
	CAFile     string `yaml:"ca_file"`
	ServerName string `yaml:"server_name"`
}

// Body bounds the bodies Airlock reads.
type Body struct {
	// Inspect is how much of a request body is read before the decision
	// (default 1MiB): GraphQL, LLM and masked requests must fit, others
	// past it stream through uninspected.
	Inspect protocols.ByteSize `yaml:"inspect"`
	// Max refuses larger request bodies with 413 (default 64MiB).
	Max protocols.ByteSize `yaml:"max"`
	// Mask is the largest response body (or one JSON line, one event)
	// masked whole (default 16MiB); a larger one is refused, never passed
	// unmasked.
	Mask protocols.ByteSize `yaml:"mask"`
}

func (u *Upstream) defaults() {
	if u.TLS.Mode == "" {
		u.TLS.Mode = "verify-full"
	}
	if u.Review == "" {
		u.Review = "retry"
	}
	if u.OnSecret == "" {
		u.OnSecret = "mask"
	}
	if u.Binary == "" {
		u.Binary = "pass"
	}
	if u.ToolSQL == "" {
		u.ToolSQL = "postgres"
	}
	if u.Body.Inspect == 0 {
		u.Body.Inspect = 1 << 20
	}
	if u.Body.Max == 0 {
		u.Body.Max = 64 << 20
	}
	if u.Body.Mask == 0 {
		u.Body.Mask = 16 << 20
	}
	switch u.Preset {
	case PresetOpenAI, PresetAnthropic:
		if u.MaskRequests == nil {
			on := true
			u.MaskRequests = &on
		}
		if u.Preset == PresetAnthropic && u.CallerHeader == "" {
			u.CallerHeader = "X-Api-Key"
		}
	case PresetGraphQL:
		if len(u.GraphQL) == 0 {
			u.GraphQL = []string{"/**"}
		}
	}
}

// validate checks the block; errors name fields relative to it.
func (u *Upstream) validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	base, err := url.Parse(u.URL)
	switch {
	case u.URL == "":
		add("url", "missing (want the API's base URL, e.g. https://api.openai.com)")
	case err != nil:
		add("url", "%v", err)
	case base.Scheme != "http" && base.Scheme != "https":
		add("url", "%q: the scheme must be http or https", u.URL)
	case base.Host == "":
		add("url", "%q: missing host", u.URL)
	case base.User != nil:
		add("url", "holds a user or password: put the credential under credential, where it stays secret")
	case base.RawQuery != "" || base.Fragment != "":
		add("url", "%q: a base URL takes no query or fragment (a key goes under credential.query)", u.URL)
	}
	if !slices.Contains([]string{"", PresetOpenAI, PresetAnthropic, PresetGraphQL, PresetGRPC}, u.Preset) {
		add("preset", "unknown preset %q (want openai, anthropic, graphql or grpc)", u.Preset)
	}
	errs = append(errs, u.Credential.validate()...)
	switch u.TLS.Mode {
	case "verify-full", "require":
	default:
		add("tls.mode", "unknown mode %q (want verify-full or require)", u.TLS.Mode)
	}
	if u.TLS.CAFile != "" {
		if _, err := os.Stat(u.TLS.CAFile); err != nil {
			add("tls.ca_file", "%v", err)
		}
	}
	if base != nil && base.Scheme == "http" && (u.TLS.CAFile != "" || u.TLS.ServerName != "") {
		add("tls", "set for an http:// upstream, which carries no TLS (use https://)")
	}
	if u.Review != "retry" && u.Review != "hold" {
		add("review", "unknown mode %q (want retry or hold)", u.Review)
	}
	if u.OnSecret != "mask" && u.OnSecret != "refuse" {
		add("on_secret", "unknown action %q (want mask or refuse)", u.OnSecret)
	}
	if u.Binary != "pass" && u.Binary != "refuse" {
		add("binary", "unknown action %q (want pass or refuse)", u.Binary)
	}
	if u.ToolSQL != "postgres" && u.ToolSQL != "mysql" {
		add("tool_sql", "unknown dialect %q (want postgres or mysql)", u.ToolSQL)
	}
	if u.Body.Inspect < 0 || u.Body.Max < 0 || u.Body.Mask < 0 {
		add("body", "sizes must not be negative")
	}
	if u.Body.Max < u.Body.Inspect {
		add("body.max", "%s is below body.inspect (%s)", u.Body.Max, u.Body.Inspect)
	}
	if u.Preset != PresetGRPC && (u.Descriptors != "" || u.Reflection) {
		add("descriptors", "only for gRPC connections (preset: grpc)")
	}
	if u.Descriptors != "" {
		if _, err := os.Stat(u.Descriptors); err != nil {
			add("descriptors", "%v", err)
		}
	}
	if u.CallerHeader != "" && !validHeaderName(u.CallerHeader) {
		add("caller_header", "%q is not a header name", u.CallerHeader)
	}
	return errs
}

func (c *Credential) validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("credential.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	n := 0
	if c.Bearer != "" {
		n++
	}
	if h := c.Header; h != nil {
		n++
		if !validHeaderName(h.Name) {
			add("header.name", "%q is not a header name", h.Name)
		}
		if h.Value == "" {
			add("header.value", "missing")
		}
	}
	if b := c.Basic; b != nil {
		n++
		if b.Username == "" || strings.Contains(b.Username, ":") {
			add("basic.username", "missing, or holds a ':'")
		}
	}
	if q := c.Query; q != nil {
		n++
		if q.Name == "" {
			add("query.name", "missing")
		}
		if q.Value == "" {
			add("query.value", "missing")
		}
	}
	if o := c.OAuth2; o != nil {
		n++
		if u, err := url.Parse(o.TokenURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			add("oauth2.token_url", "%q is not an http(s) URL", o.TokenURL)
		}
		if o.ClientID == "" {
			add("oauth2.client_id", "missing")
		}
		if o.ClientSecret == "" {
			add("oauth2.client_secret", "missing")
		}
	}
	for _, s := range []protocols.Secret{c.Bearer, secretOf(c.Header), secretOf(c.Query)} {
		if strings.Contains(s.Reveal(), "${") {
			errs = append(errs, errors.New("credential: holds an unexpanded ${...} reference (is the environment variable set?)"))
		}
	}
	if n > 1 {
		errs = append(errs, errors.New("credential: set one of bearer, header, basic, query and oauth2"))
	}
	return errs
}

func secretOf(v interface{ secret() protocols.Secret }) protocols.Secret {
	if v == nil {
		return ""
	}
	return v.secret()
}

func (h *HeaderCredential) secret() protocols.Secret {
	if h == nil {
		return ""
	}
	return h.Value
}

func (q *QueryCredential) secret() protocols.Secret {
	if q == nil {
		return ""
	}
	return q.Value
}

// validHeaderName reports an RFC 9110 field name.
func validHeaderName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}
