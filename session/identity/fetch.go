package identity

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"
)

const (
	// fetchTimeout bounds one request to the identity provider.
	fetchTimeout = 10 * time.Second
	// maxFetchBody bounds a discovery document or key set; real ones are a
	// few kilobytes.
	maxFetchBody = 1 << 20
	maxRedirects = 5
)

// errThrottled is returned for a key set fetch asked for too soon after a
// failed one.
var errThrottled = errors.New("key set fetch throttled after a recent failure")

// newHTTPClient returns the client for discovery and key set fetches: bounded
// in time and size, following redirects only to URLs checkURL accepts. base,
// when not nil, supplies the transport and timeout (tests, proxies);
// otherwise caFile, when set, replaces the system roots.
func newHTTPClient(base *http.Client, caFile string) (*http.Client, error) {
	var rt http.RoundTripper
	timeout := fetchTimeout
	if base != nil {
		rt = base.Transport
		if base.Timeout > 0 {
			timeout = base.Timeout
		}
	}
	if rt == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if caFile != "" {
			pem, err := os.ReadFile(caFile)
			if err != nil {
				return nil, fmt.Errorf("oidc.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("oidc.ca_file: no PEM certificate in %s", caFile)
			}
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		rt = tr
	}
	return &http.Client{
		Transport: limitTransport{next: rt},
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("stopped after %d redirects", len(via))
			}
			return checkURL(req.URL.String(), true)
		},
	}, nil
}

// limitTransport fails a response whose body is larger than maxFetchBody
// instead of reading it whole into memory.
type limitTransport struct{ next http.RoundTripper }

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: maxFetchBody}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte past the limit tells a body of exactly the limit from a
		// longer one.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("response body larger than %d bytes", maxFetchBody)
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// jwksThrottle stands between go-oidc's RemoteKeySet and the key set URL.
// RemoteKeySet fetches the key set whenever a token's key id is not cached or
// its signature does not verify, so every forged token would cost the
// identity provider a request. Within minInterval of the last real fetch the
// throttle answers with that fetch's body (or, if it failed, with an error):
// a legitimately rotated key is picked up at most minInterval late, and the
// provider sees at most one request per interval however many bad tokens
// arrive.
type jwksThrottle struct {
	// next is the bounded client's Do: redirects are followed below the
	// throttle, so that one fetch counts once.
	next        func(*http.Request) (*http.Response, error)
	minInterval time.Duration
	now         func() time.Time
	log         *slog.Logger

	// mu is held across the real fetch so that concurrent callers wait for
	// its result instead of fetching again.
	mu     sync.Mutex
	last   time.Time // start of the last real fetch; zero before the first
	body   []byte    // body of the last fetch if it succeeded, else nil
	header http.Header
}

func (t *jwksThrottle) RoundTrip(req *http.Request) (*http.Response, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if !t.last.IsZero() && now.Sub(t.last) < t.minInterval {
		if t.body == nil {
			return nil, errThrottled
		}
		return t.response(req), nil
	}
	t.last = now
	t.body = nil
	resp, err := t.next(req)
	if err != nil {
		t.log.Warn("oidc key set fetch failed", "url", req.URL.Redacted(), "error", err)
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.log.Warn("oidc key set fetch failed", "url", req.URL.Redacted(), "error", err)
		return nil, fmt.Errorf("read key set: %w", err)
	}
	if resp.StatusCode == http.StatusOK {
		t.body, t.header = body, resp.Header.Clone()
	} else {
		t.log.Warn("oidc key set fetch failed", "url", req.URL.Redacted(), "status", resp.Status)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

func (t *jwksThrottle) response(req *http.Request) *http.Response {
	return &http.Response{
		Status:        "200 OK",
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        t.header.Clone(),
		Body:          io.NopCloser(bytes.NewReader(t.body)),
		ContentLength: int64(len(t.body)),
		Request:       req,
	}
}

// newJWKSClient returns the client a RemoteKeySet fetches with: the throttle
// in front of the bounded client c.
func newJWKSClient(c *http.Client, minInterval time.Duration, now func() time.Time, log *slog.Logger) *http.Client {
	return &http.Client{Transport: &jwksThrottle{next: c.Do, minInterval: minInterval, now: now, log: log}}
}
