package httpreq

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

// Config is how one connection's requests are read.
type Config struct {
	// Routes are the route rules, first match first.
	Routes []Route
	// GraphQL are path patterns of the connection's GraphQL endpoints.
	GraphQL []string
	// GRPC says that the connection's paths are gRPC full method names.
	GRPC bool
}

// Analyzer classifies HTTP requests. It implements sqlrisk.Analyzer and
// protocols.Classifier.
type Analyzer struct {
	routes  []compiled
	graphql []pattern
	grpc    bool
}

// New compiles cfg. Errors name the fields under path (e.g.
// "upstream.routes"), joined.
func New(cfg Config, path string) (*Analyzer, error) {
	a := &Analyzer{grpc: cfg.GRPC}
	var errs []error
	for i, r := range cfg.Routes {
		c, e := compileRoute(r, fmt.Sprintf("%sroutes[%d]", prefix(path), i))
		errs = append(errs, e...)
		a.routes = append(a.routes, c)
	}
	for i, g := range cfg.GraphQL {
		p, err := compilePattern(g)
		if err != nil {
			errs = append(errs, fmt.Errorf("%sgraphql[%d]: %w", prefix(path), i, err))
		}
		a.graphql = append(a.graphql, p)
	}
	return a, errors.Join(errs...)
}

// prefix is path followed by a dot, or nothing at the top.
func prefix(path string) string {
	if path == "" {
		return ""
	}
	return path + "."
}

// Default is the analyzer of requests without a connection's rules
// (`airlock classify`): method semantics, and GraphQL on paths ending in
// /graphql.
func Default() *Analyzer {
	a, _ := New(Config{GraphQL: []string{"/**/graphql"}}, "")
	return a
}

// Kinds of command the engine gives (protocols.Command.Kind) that change
// how a request is read.
const (
	// KindWebSocket is a request to open a WebSocket.
	KindWebSocket = "websocket"
)

// Classify implements protocols.Classifier.
func (a *Analyzer) Classify(cmd *protocols.Command) *protocols.Classification { return a.Analyze(cmd) }

// Analyze classifies one request: cmd.Payload's method, path (with its
// query) and body, or, without a payload, cmd.Text read as "METHOD /path".
func (a *Analyzer) Analyze(cmd *protocols.Command) *protocols.Classification {
	method, target, body := requestOf(cmd)
	method = strings.ToUpper(method)
	rawPath, rawQuery, _ := strings.Cut(target, "?")
	redacted := method + " " + rawPath + redactQuery(rawQuery)
	segs, ok := normalPath(rawPath)
	if !validMethod(method) || !ok {
		return rule.Failure(rule.ParseError, redacted)
	}
	var b rule.Builder
	var risk protocols.Risk
	if r := a.route(method, segs); r != nil {
		b.Statement("route")
		hitRoute(&b, &risk, r)
		return finish(&b, risk, redacted)
	}
	if cmd.Kind == KindWebSocket {
		b.Statement("websocket")
		b.Hit(rule.HTTPWebSocket)
		return finish(&b, risk, redacted)
	}
	if a.isGraphQL(segs) {
		if doc, ok := graphQLRequest(method, rawQuery, body); ok {
			text := a.graphQL(&b, &risk, method, segs, doc)
			return finish(&b, risk, redacted+"\n"+text)
		}
		if method == "POST" {
			return rule.Failure(rule.ParseError, redacted)
		}
	}
	if a.grpc {
		b.Statement("grpc")
		b.Table(rawPath)
		if !harmlessGRPC(rawPath) {
			b.Hit(rule.GRPCCall)
		}
		return finish(&b, risk, redacted)
	}
	b.Statement(strings.ToLower(method))
	switch method {
	case "GET", "HEAD", "OPTIONS":
	case "POST", "PUT", "PATCH":
		b.Hit(rule.HTTPWrite)
	case "DELETE":
		b.Hit(rule.HTTPDelete)
	default:
		b.Hit(rule.HTTPMethod)
	}
	return finish(&b, risk, redacted)
}

// requestOf returns the request a command describes.
func requestOf(cmd *protocols.Command) (method, target string, body []byte) {
	if p := cmd.Payload; p != nil && p.Method != "" {
		return p.Method, p.Path, p.Body
	}
	method, target, _ = strings.Cut(strings.TrimSpace(cmd.Text), " ")
	return method, strings.TrimSpace(target), nil
}

func (a *Analyzer) route(method string, segs []string) *compiled {
	for i := range a.routes {
		if r := &a.routes[i]; r.field == "" && r.matches(method, segs, false) {
			return r
		}
	}
	return nil
}

func hitRoute(b *rule.Builder, risk *protocols.Risk, r *compiled) {
	if r.rule != "" {
		b.Hit(r.rule)
	}
	*risk = max(*risk, r.risk)
}

func (a *Analyzer) isGraphQL(segs []string) bool {
	for _, p := range a.graphql {
		if p.match(segs) {
			return true
		}
	}
	return false
}

// finish returns the classification with its risk at least risk (a route
// may raise it above its rule's).
func finish(b *rule.Builder, risk protocols.Risk, redacted string) *protocols.Classification {
	c := b.Classification(redacted)
	c.Risk = max(c.Risk, risk)
	return c
}

// harmlessGRPC reports the gRPC methods every server may offer that read
// nothing of the application: health checks.
func harmlessGRPC(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.v1.Health/")
}

// credentialParams are marks of query parameter names that carry a
// credential (?api_key=…, ?access_token=…, a signed URL's signature).
var credentialParams = []string{"key", "token", "secret", "password", "passwd", "auth", "sig", "credential", "session"}

// redactQuery returns "?query" with the values of credential-like
// parameters removed, or "" for no query.
func redactQuery(raw string) string {
	if raw == "" {
		return ""
	}
	var out strings.Builder
	out.WriteByte('?')
	for i, kv := range strings.Split(raw, "&") {
		if i > 0 {
			out.WriteByte('&')
		}
		k, _, hasValue := strings.Cut(kv, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if hasValue && credentialName(name) {
			out.WriteString(k + "=[removed]")
			continue
		}
		out.WriteString(kv)
	}
	return out.String()
}

func credentialName(name string) bool {
	n := strings.ToLower(name)
	for _, m := range credentialParams {
		if strings.Contains(n, m) {
			return true
		}
	}
	return false
}
