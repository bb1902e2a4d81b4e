package httpproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/sqlrisk/httpreq"
)

// Engine serves HTTP connections on the gateway's HTTP listener.
type Engine struct {
	settings Settings
}

var (
	_ engine.Engine      = (*Engine)(nil)
	_ engine.HTTPHandler = (*Engine)(nil)
)

// New returns an Engine with the default settings; Configure changes them.
func New() *Engine {
	e := &Engine{}
	e.settings.defaults()
	return e
}

// Settings returns the engine's settings, defaults applied.
func (e *Engine) Settings() Settings { return e.settings }

// Protocol implements engine.Engine.
func (e *Engine) Protocol() protocols.Protocol { return protocols.HTTP }

// Configure implements engine.Engine: the `http:` section.
func (e *Engine) Configure(section engine.Decode) error {
	var s Settings
	if err := section(&s); err != nil {
		return err
	}
	s.defaults()
	if err := s.validate(); err != nil {
		return err
	}
	e.settings = s
	return nil
}

// Upstream implements engine.Engine: it decodes, checks and compiles one
// connection's upstream block.
func (e *Engine) Upstream(block engine.Decode) (any, error) {
	var u Upstream
	if err := block(&u); err != nil {
		return nil, err
	}
	u.defaults()
	errs := u.validate()
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return compile(u, e.settings)
}

// Serve implements engine.Engine. HTTP connections are served on the HTTP
// listener through Mount, so Serve is not called; it refuses to run.
func (e *Engine) Serve(ctx context.Context, ln net.Listener, deps engine.Deps) error {
	return errors.New("http connections are served on the HTTP listener (listen.http), not on a listener of their own")
}

// compiled is one connection's upstream, ready to serve: what the config
// said and what was built from it. It is immutable once built, except
// for the credential's token source and the gRPC descriptors, which are
// safe for concurrent use.
type compiled struct {
	cfg      Upstream
	base     *url.URL
	analyzer *httpreq.Analyzer
	cred     *credential
	dial     *dialer
	grpc     *grpcSchema // nil without descriptors or reflection
}

// Classifier implements engine.ConnectionClassifier: the connection's
// route rules.
func (c *compiled) Classifier() protocols.Classifier { return c.analyzer }

func compile(u Upstream, s Settings) (*compiled, error) {
	base, _ := url.Parse(u.URL)
	base.Path = strings.TrimRight(base.Path, "/")
	base.RawPath = ""
	a, err := httpreq.New(httpreq.Config{Routes: u.Routes, GraphQL: u.GraphQL, GRPC: u.Preset == PresetGRPC}, "")
	if err != nil {
		return nil, err
	}
	d, err := newDialer(u, base, s)
	if err != nil {
		return nil, err
	}
	c := &compiled{cfg: u, base: base, analyzer: a, dial: d}
	c.cred = newCredential(u.Credential, d.client)
	if u.Descriptors != "" || u.Reflection {
		c.grpc = &grpcSchema{path: u.Descriptors}
		if err := c.grpc.load(); err != nil {
			return nil, fmt.Errorf("descriptors: %w", err)
		}
		if u.Reflection {
			c.grpc.reflect = newReflector(c)
		}
	}
	return c, nil
}

// upstreamOf returns a connection's compiled upstream.
func upstreamOf(conn *protocols.Connection) (*compiled, error) {
	c, ok := conn.Upstream.(*compiled)
	if !ok {
		return nil, fmt.Errorf("connection %s has no HTTP upstream", conn.Name)
	}
	return c, nil
}

// masksRequests reports whether request bodies are masked before they
// leave.
func (c *compiled) masksRequests() bool { return c.cfg.MaskRequests != nil && *c.cfg.MaskRequests }

// mustInspect reports whether every request body must be read whole
// before the decision: GraphQL operations, LLM prompts and masked bodies
// cannot be judged or masked in part.
func (c *compiled) mustInspect() bool {
	return c.masksRequests() || c.cfg.Preset == PresetGraphQL || len(c.cfg.GraphQL) > 0
}
