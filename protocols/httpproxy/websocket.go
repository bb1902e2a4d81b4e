package httpproxy

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/coder/websocket"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session"
	"github.com/airlock-gw/airlock/sqlrisk/httpreq"
)

// WebSocket connections are decided once, at the upgrade; then Airlock
// holds a WebSocket to the caller and one to the upstream
// (github.com/coder/websocket, RFC 6455) and relays message by message,
// text messages masked (and scrubbed of the credential) in both
// directions and every message recorded. Compression is not negotiated,
// so every message can be read.

// isWebSocket reports a request to open a WebSocket.
func isWebSocket(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		headerHasToken(r.Header, "Connection", "upgrade")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// wsRequestHeaders are the caller's headers a WebSocket dial must not
// copy: the handshake's own, and the caller's credentials.
var wsRequestHeaders = []string{"Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version",
	"Sec-Websocket-Extensions", "Sec-Websocket-Protocol", "Authorization", "Proxy-Authorization", "Host", "Prefer"}

func (p *proxy) serveWebSocket(w http.ResponseWriter, r *http.Request, x *exchange, rest string) {
	cmd := &protocols.Command{Protocol: protocols.HTTP, Kind: httpreq.KindWebSocket, Text: r.Method + " " + rest,
		Payload: &protocols.Payload{Method: r.Method, Path: x.path}}
	if !p.check(w, r, x, cmd) {
		return
	}
	upc, res, err := p.dialWebSocket(r, x, rest)
	if err != nil {
		if res != nil && res.StatusCode != http.StatusSwitchingProtocols {
			// The upstream refused the upgrade: its answer, masked.
			x.status = res.StatusCode
		}
		p.upstreamFailed(w, r, x, err)
		return
	}
	defer upc.CloseNow()
	var accept []string
	if sp := upc.Subprotocol(); sp != "" {
		accept = []string{sp}
	}
	// The caller proved who it is with its token; browsers' Origin is not
	// what admits it.
	cc, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: accept, InsecureSkipVerify: true,
		CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		x.finish(http.StatusBadRequest, "websocket upgrade failed")
		return
	}
	defer cc.CloseNow()
	x.status = http.StatusSwitchingProtocols
	if res != nil {
		sc := newScrubber(x.up.cred.secrets())
		sc.header(res.Header)
		x.resHdr = headers(res.Header)
	}
	p.relayBoth(r.Context(), x, cc, upc)
	x.finish(http.StatusSwitchingProtocols, "")
}

// dialWebSocket opens the upstream side of a WebSocket with the held
// credential, offering the caller's subprotocols. A credential that cannot
// be applied is noted on x.
func (p *proxy) dialWebSocket(r *http.Request, x *exchange, rest string) (*websocket.Conn, *http.Response, error) {
	up := x.up
	target := *up.base
	target.Path = up.base.Path + mustUnescape(rest)
	target.RawQuery = r.URL.RawQuery
	out, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, target.String(), nil)
	for k, vs := range r.Header {
		out.Header[k] = vs
	}
	for _, k := range wsRequestHeaders {
		out.Header.Del(k)
	}
	if up.cfg.CallerHeader != "" {
		out.Header.Del(up.cfg.CallerHeader)
	}
	if err := up.cred.apply(out); err != nil {
		x.credErr = err
		return nil, nil, err
	}
	out.URL.Scheme = "ws"
	if target.Scheme == "https" {
		out.URL.Scheme = "wss"
	}
	var protos []string
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				protos = append(protos, s)
			}
		}
	}
	return websocket.Dial(r.Context(), out.URL.String(), &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: up.dial.http1}, HTTPHeader: out.Header, Subprotocols: protos,
		CompressionMode: websocket.CompressionDisabled})
}

// relayBoth relays messages both ways until either side ends, then closes
// both with the status the ending side gave.
func (p *proxy) relayBoth(ctx context.Context, x *exchange, cc, upc *websocket.Conn) {
	limit := int64(x.up.cfg.Body.Mask)
	cc.SetReadLimit(limit)
	upc.SetReadLimit(limit)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	results := x.lease.s.Results(nil)
	go func() { errc <- p.relay(ctx, x, results, cc, upc, "client") }()
	go func() { errc <- p.relay(ctx, x, results, upc, cc, "upstream") }()
	err := <-errc
	cancel()
	code, reason := websocket.StatusNormalClosure, ""
	if s := websocket.CloseStatus(err); s != -1 {
		code = s
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			reason = ce.Reason
		}
	}
	_ = cc.Close(code, reason)
	_ = upc.Close(code, reason)
	<-errc
}

// relay copies messages from src to dst until either side ends, masking
// and recording each; res is shared by both directions, which only record
// replies through it.
func (p *proxy) relay(ctx context.Context, x *exchange, res *session.Results, src, dst *websocket.Conn, from string) error {
	s := x.lease.s
	sc := newScrubber(x.up.cred.secrets())
	for {
		typ, data, err := src.Read(ctx)
		if err != nil {
			return err
		}
		kind := "websocket " + from + " binary"
		if typ == websocket.MessageText {
			kind = "websocket " + from + " text"
			data = s.Text(data)
			if from == "upstream" {
				data = sc.bytes(data)
			}
		}
		rec := protocols.Reply{Kind: kind, Count: 1}
		if typ == websocket.MessageText {
			rec.Values = [][]byte{cutBytes(data, 4<<10)}
		}
		if err := res.Reply(rec); err != nil {
			x.lease.broken.Store(true)
			return err
		}
		if err := dst.Write(ctx, typ, data); err != nil {
			return err
		}
	}
}

func cutBytes(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return b[:n]
}
