package httpproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// upstreamFailed answers a request the upstream did not answer, or whose
// response could not be masked.
func (p *proxy) upstreamFailed(w http.ResponseWriter, r *http.Request, x *exchange, err error) {
	var pr problem
	switch {
	case x.credErr != nil:
		p.log.Warn("upstream credential unavailable", "connection", x.lease.s.Conn.Name, "err", x.credErr)
		pr = newProblem(http.StatusBadGateway, "credential-unavailable", "Upstream credential unavailable",
			"Airlock could not obtain the credential it holds for this connection")
	case errors.Is(err, errTooLarge):
		pr = newProblem(http.StatusBadGateway, "response-too-large", "Response too large to mask",
			"the upstream's response is larger than Airlock masks whole on this connection (body.mask); it was not passed unmasked")
	case errors.Is(err, errEncoding):
		pr = newProblem(http.StatusBadGateway, "response-encoding", "Response not readable",
			"the upstream answered in a content coding Airlock cannot decode, so it could not be masked")
	case errors.Is(err, errBinaryRefused):
		pr = newProblem(http.StatusBadGateway, "binary-refused", "Binary response refused",
			"this connection refuses response bodies masking cannot read (binary: refuse)")
	case errors.Is(err, errBodyTooLarge):
		pr = newProblem(http.StatusRequestEntityTooLarge, "body-too-large", "Request body too large",
			fmt.Sprintf("the request body is larger than this connection accepts (%s)", x.up.cfg.Body.Max))
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		x.finish(499, "client went away")
		return
	default:
		x.lease.s.UpstreamError()
		p.log.Info("upstream request failed", "connection", x.lease.s.Conn.Name, "err", err)
		st := http.StatusBadGateway
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			st = http.StatusGatewayTimeout
		}
		pr = newProblem(st, "upstream-unavailable", "Upstream unavailable", "the connection's upstream could not be reached or did not answer")
	}
	x.finish(pr.write(w), pr.Title)
}

var errBinaryRefused = errors.New("binary response refused")

// response masks the upstream's response before it is sent: headers
// scrubbed of the credential, redirects rewritten, the body decoded and
// masked unit by unit, and recorded as it streams.
func (p *proxy) response(res *http.Response, x *exchange) error {
	s := x.lease.s
	sc := newScrubber(x.up.cred.secrets())
	sc.header(res.Header)
	p.redirect(res, x)
	x.status = res.StatusCode
	if res.Body == nil || res.Body == http.NoBody || res.StatusCode == http.StatusSwitchingProtocols {
		x.resHdr = headers(res.Header)
		return nil
	}
	k := kindOf(res.Header.Get("Content-Type"))
	if k == kindBinary && x.up.cfg.Binary == "refuse" {
		return errBinaryRefused
	}
	body, err := decoded(res.Body, res.Header.Get("Content-Encoding"))
	if err != nil {
		return err
	}
	res.Header.Del("Content-Encoding")
	m := s.Masker()
	limit := int64(x.up.cfg.Body.Mask)
	mask := func(b []byte) []byte { return maskDocument(m, k, b, sc) }
	switch k {
	case kindJSON, kindText:
		// Masked whole before the first byte leaves: a body too large to
		// mask is refused with a status, not cut.
		whole, err := io.ReadAll(newTransform(body, wholeUnit(limit), mask))
		body.Close()
		if err != nil {
			return err
		}
		if x.llm != nil {
			x.llm.document(whole)
		}
		res.Body = io.NopCloser(bytes.NewReader(whole))
		res.ContentLength = int64(len(whole))
		res.Header.Set("Content-Length", strconv.Itoa(len(whole)))
	case kindLines:
		p.streamed(res, newTransform(body, lineUnit(limit), mask))
	case kindEvents:
		p.streamed(res, newTransform(body, eventUnit(limit), func(b []byte) []byte {
			out := mask(b)
			if x.llm != nil {
				eventData(out, x.llm.event)
			}
			return out
		}))
	default:
		p.streamed(res, newTransform(body, chunkUnit(sc.longest), sc.bytes))
	}
	res.Header.Del("Content-MD5")
	res.Header.Del("Digest")
	x.resHdr = headers(res.Header)
	res.Body = &recordedBody{ReadCloser: res.Body, x: x}
	return nil
}

// streamed sends a body masked as it streams: its length is unknown.
func (p *proxy) streamed(res *http.Response, body io.ReadCloser) {
	res.Body = body
	res.ContentLength = -1
	res.Header.Del("Content-Length")
}

// redirect rewrites a redirect to the upstream itself into the Airlock
// path of the same resource; a redirect elsewhere goes out as it came,
// without the credential's query parameter.
func (p *proxy) redirect(res *http.Response, x *exchange) {
	loc := res.Header.Get("Location")
	if loc == "" {
		return
	}
	u, err := res.Request.URL.Parse(loc)
	if err != nil {
		res.Header.Del("Location")
		return
	}
	if qp := x.up.cred.queryParam(); qp != "" && u.Query().Has(qp) {
		q := u.Query()
		q.Del(qp)
		u.RawQuery = q.Encode()
	}
	base := x.up.base
	if strings.EqualFold(u.Host, base.Host) && u.Scheme == base.Scheme && strings.HasPrefix(u.Path, base.Path) {
		rel := strings.TrimPrefix(u.EscapedPath(), base.EscapedPath())
		if !strings.HasPrefix(rel, "/") {
			rel = "/" + rel
		}
		path := Prefix + x.lease.s.Conn.Name + rel
		if p.settings.Domain != "" && !strings.HasPrefix(res.Request.URL.Path, Prefix) {
			path = rel
		}
		if u.RawQuery != "" {
			path += "?" + u.RawQuery
		}
		res.Header.Set("Location", path)
		return
	}
	res.Header.Set("Location", u.String())
}
