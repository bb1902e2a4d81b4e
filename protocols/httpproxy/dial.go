package httpproxy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

// dialer holds a connection's upstream transports: keep-alive connections
// reused across requests and callers, HTTP/2 where the upstream offers it
// (and always for gRPC: h2c to an http:// upstream).
type dialer struct {
	transport *http.Transport
	// http1 is for WebSocket upgrades, which HTTP/2 cannot carry here.
	http1 *http.Transport
	// client fetches OAuth2 tokens and speaks to gRPC reflection.
	client *http.Client
	tls    *tls.Config
}

func newDialer(u Upstream, base *url.URL, s Settings) (*dialer, error) {
	var tc *tls.Config
	if base.Scheme == "https" {
		tc = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.TLS.ServerName}
		if u.TLS.Mode == "require" {
			tc.InsecureSkipVerify = true // require: encrypted, unverified, as the mode says
		}
		if u.TLS.CAFile != "" {
			pem, err := os.ReadFile(u.TLS.CAFile)
			if err != nil {
				return nil, fmt.Errorf("tls.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("tls.ca_file: %s holds no PEM certificate", u.TLS.CAFile)
			}
			tc.RootCAs = pool
		}
	}
	nd := &net.Dialer{Timeout: s.ConnectTimeout, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		// Never an environment proxy: credentials go to the upstream only.
		Proxy:                 nil,
		DialContext:           nd.DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   s.ConnectTimeout,
		ResponseHeaderTimeout: s.ResponseTimeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		// Airlock asks for the encodings it can decode and decodes them.
		DisableCompression:     true,
		ForceAttemptHTTP2:      true,
		MaxResponseHeaderBytes: 1 << 20,
	}
	if u.Preset == PresetGRPC {
		var p http.Protocols
		if base.Scheme == "http" {
			p.SetUnencryptedHTTP2(true)
		} else {
			p.SetHTTP2(true)
		}
		t.Protocols = &p
	}
	h1 := t.Clone()
	var p1 http.Protocols
	p1.SetHTTP1(true)
	h1.Protocols = &p1
	h1.ForceAttemptHTTP2 = false
	var ctc *tls.Config
	if tc != nil {
		ctc = tc.Clone()
		ctc.ServerName = ""
	}
	ct := &http.Transport{Proxy: nil, DialContext: nd.DialContext, TLSClientConfig: ctc, TLSHandshakeTimeout: s.ConnectTimeout,
		ResponseHeaderTimeout: 30 * time.Second, ForceAttemptHTTP2: true}
	return &dialer{transport: t, http1: h1, client: &http.Client{Transport: ct, Timeout: time.Minute}, tls: tc}, nil
}
