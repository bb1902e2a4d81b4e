package httpproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/session"
)

// Prefix is the path under which connection NAME is served: /proxy/NAME/….
const Prefix = "/proxy/"

// proxy is the engine's handler on the HTTP listener.
type proxy struct {
	settings Settings
	deps     engine.HTTPDeps
	log      *slog.Logger
	pools    *pools
	metrics  *metrics
}

// Mount implements engine.HTTPHandler.
func (e *Engine) Mount(deps engine.HTTPDeps) (engine.Mount, error) {
	if deps.Retry == nil || deps.Hold == nil {
		return engine.Mount{}, errors.New("http engine: no gateway")
	}
	if e.settings.Mode == "decode" {
		deps.Retry, deps.Hold = deps.Retry.WithoutInspection(), deps.Hold.WithoutInspection()
	}
	p := &proxy{settings: e.settings, deps: deps, log: deps.Log, pools: newPools(e.settings.SessionIdle, e.settings.SessionRequests, e.settings.SessionMaxIdlePerCaller),
		metrics: newMetrics(deps.Registerer)}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.log = p.log.With("engine", "http")
	if e.settings.Mode == "decode" {
		p.log.Warn("http.mode is for measurement only: requests are not classified, refused, masked or recorded", "mode", e.settings.Mode)
	}
	m := engine.Mount{Prefix: Prefix, Handler: p, Close: p.pools.close}
	if e.settings.Domain != "" {
		m.Host = p.hostConnection
	}
	return m, nil
}

// hostConnection reports whether host is NAME.<domain> for a connection
// of this engine.
func (p *proxy) hostConnection(host string) bool {
	name, ok := p.nameFromHost(host)
	if !ok {
		return false
	}
	c := p.deps.Retry.Connection(name)
	return c != nil && c.Protocol == protocols.HTTP
}

func (p *proxy) nameFromHost(host string) (string, bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	name, ok := strings.CutSuffix(strings.ToLower(host), "."+strings.ToLower(p.settings.Domain))
	return name, ok && name != "" && !strings.Contains(name, ".")
}

// target splits a request into its connection's name and the path (still
// escaped) relative to the connection's base URL.
func (p *proxy) target(r *http.Request) (name, rest string, ok bool) {
	if p.settings.Domain != "" {
		if name, ok := p.nameFromHost(r.Host); ok {
			return name, r.URL.EscapedPath(), true
		}
	}
	after, found := strings.CutPrefix(r.URL.EscapedPath(), Prefix)
	if !found {
		return "", "", false
	}
	name, rest, _ = strings.Cut(after, "/")
	if name == "" {
		return "", "", false
	}
	return name, "/" + rest, true
}

// ServeHTTP implements http.Handler: one request, one command through the
// session flow.
func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, rest, ok := p.target(r)
	conn := p.deps.Retry.Connection(name)
	if !ok || conn == nil || conn.Protocol != protocols.HTTP {
		p.notFound(w, r, name)
		return
	}
	up, err := upstreamOf(conn)
	if err != nil {
		p.notFound(w, r, name)
		return
	}
	token, ok := callerToken(r, up.cfg.CallerHeader)
	if !ok {
		p.challenge(w, r, "a bearer token is required: send \"Authorization: Bearer <token>\" with your Airlock token")
		return
	}
	g := p.deps.Retry
	if up.cfg.Review == "hold" || prefersWait(r) {
		g = p.deps.Hold
	}
	sess, err := p.admit(r, g, session.Caller{Protocol: protocols.HTTP, Secret: token, Connection: name,
		Peer: r.RemoteAddr, TLS: r.TLS != nil, Local: isLoopback(r.RemoteAddr)})
	if err != nil {
		p.refuseAdmission(w, r, name, err)
		return
	}
	l, err := p.pools.acquire(g, sess)
	if err != nil {
		newProblem(http.StatusServiceUnavailable, "recording-unavailable", "Recording unavailable",
			"the session could not be recorded, and nothing runs unrecorded; try again shortly").write(w)
		return
	}
	defer p.pools.release(l)
	x := &exchange{p: p, lease: l, up: up, start: time.Now(), method: r.Method, path: rest + query(r),
		reqHdr: headers(r.Header, "Authorization", up.cfg.CallerHeader)}
	switch {
	case isWebSocket(r):
		p.serveWebSocket(w, r, x, rest)
	case isGRPC(r):
		p.serveGRPC(w, r, x, rest)
	default:
		p.serveRequest(w, r, x, rest)
	}
}

func query(r *http.Request) string {
	if r.URL.RawQuery == "" {
		return ""
	}
	return "?" + r.URL.RawQuery
}

// serveRequest reads and decides one request, then forwards it.
func (p *proxy) serveRequest(w http.ResponseWriter, r *http.Request, x *exchange, rest string) {
	s := x.lease.s
	body, streamed, ok := p.readBody(w, r, x)
	if !ok {
		return
	}
	cmd := &protocols.Command{Protocol: protocols.HTTP, Kind: "request", Text: r.Method + " " + rest,
		Payload: &protocols.Payload{Method: r.Method, Path: x.path, Body: body}}
	if streamed != nil {
		// A body past body.inspect is not read before the decision: the
		// command says so, and an approval covers its declared size only.
		cmd.Kind = fmt.Sprintf("request, body of %d bytes not inspected", r.ContentLength)
	}
	x.reqSize = int64(len(body))
	if streamed != nil {
		x.reqSize = r.ContentLength
	}
	x.reqBody = p.requestSample(s, r, body)
	if !p.check(w, r, x, cmd) {
		return
	}
	out := body
	if x.up.masksRequests() && body != nil && s.Masker() != nil {
		masked := maskDocument(s.Masker(), kindOf(r.Header.Get("Content-Type")), body, noScrub)
		if !bytes.Equal(masked, body) {
			if x.up.cfg.OnSecret == "refuse" {
				x.finish(newProblem(http.StatusForbidden, "sensitive-request", "Request refused",
					"the request body holds values this connection's masking detects (credentials or personal data); remove them and send it again").write(w), "")
				return
			}
			out = masked
		}
	}
	if x.up.cfg.Preset == PresetOpenAI || x.up.cfg.Preset == PresetAnthropic {
		x.llm = newLLMObserver(p, x, out)
	}
	p.forward(w, r, x, rest, out, streamed)
}

// noScrub scrubs nothing: a request body holds no upstream credential
// Airlock put there.
var noScrub = newScrubber(nil)

// readBody reads a request body up to body.inspect before the decision.
// A larger one is refused (413) past body.max, or when the connection
// must read bodies whole; otherwise what was read and the rest stream on
// (streamed). ok is false when the request was answered.
func (p *proxy) readBody(w http.ResponseWriter, r *http.Request, x *exchange) (body []byte, streamed io.Reader, ok bool) {
	up := x.up
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil, true
	}
	limit := int64(up.cfg.Body.Inspect)
	if r.ContentLength > int64(up.cfg.Body.Max) || (r.ContentLength > limit && up.mustInspect()) {
		p.tooLarge(w, x)
		return nil, nil, false
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(p.settings.BodyTimeout))
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		st := http.StatusBadRequest
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			st = http.StatusRequestTimeout
		}
		x.finish(newProblem(st, "bad-body", "Request body unreadable", "the request body could not be read in time or was malformed").write(w), "request body unreadable")
		return nil, nil, false
	}
	_ = rc.SetReadDeadline(time.Time{})
	if int64(len(b)) <= limit {
		return b, nil, true
	}
	if up.mustInspect() {
		p.tooLarge(w, x)
		return nil, nil, false
	}
	maxBody := int64(up.cfg.Body.Max)
	return nil, &limitedBody{r: io.MultiReader(bytes.NewReader(b), r.Body), left: maxBody}, true
}

func (p *proxy) tooLarge(w http.ResponseWriter, x *exchange) {
	detail := fmt.Sprintf("the request body is larger than this connection accepts (%s)", x.up.cfg.Body.Max)
	if x.up.mustInspect() {
		detail = fmt.Sprintf("the request body is larger than Airlock reads before deciding on this connection (%s)", x.up.cfg.Body.Inspect)
	}
	w.Header().Set("Connection", "close")
	x.finish(newProblem(http.StatusRequestEntityTooLarge, "body-too-large", "Request body too large", detail).write(w), "request body too large")
}

// limitedBody streams a body and fails past its limit, for bodies whose
// length was not declared.
type limitedBody struct {
	r    io.Reader
	left int64
}

var errBodyTooLarge = errors.New("request body too large")

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, errBodyTooLarge
	}
	return n, err
}

// requestSample is the request body as recorded: masked, cut.
func (p *proxy) requestSample(s *session.Session, r *http.Request, body []byte) []byte {
	if len(body) == 0 {
		return nil
	}
	k := kindOf(r.Header.Get("Content-Type"))
	if k == kindBinary || k == kindGRPC {
		return nil
	}
	if m := s.Masker(); m != nil {
		body = maskDocument(m, k, body, noScrub)
	}
	if len(body) > 4<<10 {
		body = body[:4<<10]
	}
	return bytes.Clone(body)
}

// check takes the command through the session flow; it answers a refusal
// and reports false, or reports true to forward.
func (p *proxy) check(w http.ResponseWriter, r *http.Request, x *exchange, cmd *protocols.Command) bool {
	dec, err := x.lease.s.Check(r.Context(), cmd)
	if err != nil {
		if errors.Is(err, session.ErrRecordingFailed) {
			x.lease.broken.Store(true)
		}
		if r.Context().Err() == nil {
			newProblem(http.StatusServiceUnavailable, "unavailable", "Request not decided",
				"the request could not be decided ("+checkErrorText(err)+"); it did not run").write(w)
		}
		return false
	}
	if dec.Action == protocols.Allow {
		return true
	}
	x.finish(p.refuse(w, r, dec).write(w), dec.Reason)
	return false
}

func checkErrorText(err error) string {
	switch {
	case errors.Is(err, session.ErrRecordingFailed):
		return "the recording failed"
	case errors.Is(err, session.ErrClientGone), errors.Is(err, context.Canceled):
		return "the client went away"
	}
	return "the session ended"
}

// refuse words a refusal: 409 with the approval request while a reviewer
// has yet to decide (retry mode: the identical request runs once after
// approval), 403 otherwise.
func (p *proxy) refuse(w http.ResponseWriter, r *http.Request, dec protocols.Decision) problem {
	if dec.ApprovalID != "" {
		pr := newProblem(http.StatusConflict, "approval-required", "Approval required", dec.Reason+
			"; send the identical request (method, path, query and body) again once a reviewer approved it, and it runs once")
		pr.Risk, pr.Rules, pr.ApprovalID, pr.RetryAfter = dec.Risk.String(), dec.Rules, dec.ApprovalID, 30
		pr.ReviewURL = p.deps.AdminURL + "/approvals/" + dec.ApprovalID
		if p.deps.WaitPath != "" {
			pr.WaitURL = p.deps.WaitPath + dec.ApprovalID + "?wait=30s"
		}
		return pr
	}
	pr := newProblem(http.StatusForbidden, "denied", "Request refused", dec.Reason)
	pr.Risk, pr.Rules = dec.Risk.String(), dec.Rules
	return pr
}

// forward sends the request upstream with the held credential and the
// response back through masking and the recording.
func (p *proxy) forward(w http.ResponseWriter, r *http.Request, x *exchange, rest string, body []byte, streamed io.Reader) {
	rp := p.reverseProxy(x, rest, func(out *http.Request) {
		switch {
		case streamed != nil:
			out.Body = io.NopCloser(streamed)
		case body != nil:
			out.Body = io.NopCloser(bytes.NewReader(body))
			out.ContentLength = int64(len(body))
			out.Header.Del("Content-Length")
		default:
			out.Body, out.ContentLength = nil, 0
		}
		out.GetBody = nil
	}, func(res *http.Response) error { return p.response(res, x) })
	rp.ServeHTTP(w, r)
	x.finish(0, "")
}

// reverseProxy is the proxy of one request: body sets the outgoing
// request's body, response masks the response.
func (p *proxy) reverseProxy(x *exchange, rest string, body func(out *http.Request), response func(*http.Response) error) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			p.rewrite(pr, x, rest)
			body(pr.Out)
		},
		Transport: x.up.dial.transport,
		// 0, not -1: a response of known length leaves in one write when
		// it ends (or whenever the server's buffer fills), where -1 made
		// a flush, a system call, of every piece. Streams of unknown
		// length, event streams and gRPC's still flush at once: the
		// reverse proxy does that for them whatever this says.
		FlushInterval:  0,
		BufferPool:     copyBuffers,
		ModifyResponse: response,
		ErrorHandler:   func(w http.ResponseWriter, r *http.Request, err error) { p.upstreamFailed(w, r, x, err) },
		ErrorLog:       slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
}

// rewrite points the outgoing request at the upstream: the caller's
// Airlock token removed, the held credential set.
func (p *proxy) rewrite(pr *httputil.ProxyRequest, x *exchange, rest string) {
	up := x.up
	out := pr.Out
	u := *up.base
	if rest == "/" && up.base.Path != "" {
		// The connection's root is the base URL itself (a GraphQL
		// endpoint), not a directory under it.
		rest = ""
	}
	u.Path = up.base.Path + mustUnescape(rest)
	u.RawPath = up.base.EscapedPath() + rest
	if u.RawPath == u.EscapedPath() {
		u.RawPath = ""
	}
	u.RawQuery = pr.In.URL.RawQuery
	out.URL = &u
	out.Host = ""
	h := out.Header
	h.Del("Authorization")
	h.Del("Proxy-Authorization")
	if up.cfg.CallerHeader != "" {
		h.Del(up.cfg.CallerHeader)
	}
	h.Del("Prefer")
	if ae := h.Get("Accept-Encoding"); ae != "" {
		if f := acceptedEncodings(ae); f != "" {
			h.Set("Accept-Encoding", f)
		} else {
			h.Del("Accept-Encoding")
		}
	}
	if err := up.cred.apply(out); err != nil {
		// The transport fails on a request without a URL host; the error
		// handler answers 502.
		out.URL.Host = ""
		x.credErr = err
	}
}

func mustUnescape(p string) string {
	if u, err := url.PathUnescape(p); err == nil {
		return u
	}
	return p
}

// callerToken returns the caller's Airlock token: a single bearer
// Authorization, or the connection's caller header.
func callerToken(r *http.Request, callerHeader string) (protocols.Secret, bool) {
	if vs := r.Header.Values("Authorization"); len(vs) == 1 {
		scheme, token, ok := strings.Cut(strings.TrimSpace(vs[0]), " ")
		token = strings.TrimSpace(token)
		if ok && strings.EqualFold(scheme, "Bearer") && token != "" {
			return protocols.Secret(token), true
		}
	}
	if callerHeader != "" {
		if vs := r.Header.Values(callerHeader); len(vs) == 1 && strings.TrimSpace(vs[0]) != "" {
			return protocols.Secret(strings.TrimSpace(vs[0])), true
		}
	}
	return "", false
}

// prefersWait reports a caller that asked to wait for an approval
// (RFC 7240 "Prefer: wait").
func prefersWait(r *http.Request) bool {
	for _, v := range r.Header.Values("Prefer") {
		for _, pref := range strings.Split(v, ",") {
			if name, _, _ := strings.Cut(strings.TrimSpace(pref), "="); strings.EqualFold(strings.TrimSpace(name), "wait") {
				return true
			}
		}
	}
	return false
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (p *proxy) notFound(w http.ResponseWriter, r *http.Request, name string) {
	newProblem(http.StatusNotFound, "connection-not-found", "Connection not found",
		fmt.Sprintf("connection %q does not exist or this identity may not use it; HTTP connections are served at %sNAME/…", name, Prefix)).write(w)
}

func (p *proxy) challenge(w http.ResponseWriter, r *http.Request, detail string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="airlock"`)
	newProblem(http.StatusUnauthorized, "unauthorized", "Authentication required", detail).write(w)
}

// refuseAdmission answers a caller Admit refused.
func (p *proxy) refuseAdmission(w http.ResponseWriter, r *http.Request, name string, err error) {
	if refuseLimited(w, err) {
		return
	}
	switch {
	case errors.Is(err, session.ErrTLSRequired):
		newProblem(http.StatusForbidden, "tls-required", "TLS required",
			"tokens are accepted only over TLS from another machine: use https:// and revoke the token that was sent in clear").write(w)
	case errors.Is(err, session.ErrNoConnection):
		p.notFound(w, r, name)
	case errors.Is(err, session.ErrAuthFailed):
		p.challenge(w, r, "the token was not accepted")
	default:
		w.Header().Set("Retry-After", "5")
		newProblem(http.StatusServiceUnavailable, "identity-unavailable", "Identity provider unavailable",
			"the caller could not be authenticated just now; try again shortly").write(w)
	}
}

// copyBuffers are the reverse proxy's 32 KiB copy buffers, kept between
// requests: without a pool it allocates one per response.
var copyBuffers = &bufferPool{sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte  { return *b.p.Get().(*[]byte) }
func (b *bufferPool) Put(s []byte) { b.p.Put(&s) }
