package transport

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestHTTPListener serves TLS and plain HTTP on one port, through the
// shared accept loop: silent clients are capped, the oldest dropped, and
// a client that speaks is served meanwhile.
func TestHTTPListener(t *testing.T) {
	// httptest's server carries a certificate for 127.0.0.1.
	certSrv := httptest.NewTLSServer(http.NotFoundHandler())
	tlsConf := certSrv.TLS.Clone()
	certSrv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dropped := make(chan struct{}, 64)
	hl := NewHTTPListener(ln, tlsConf, HTTPOptions{HandshakeTimeout: 5 * time.Second, MaxUnauthenticated: 4,
		OnDrop: func() { dropped <- struct{}{} }})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, map[bool]string{true: "tls", false: "plain"}[r.TLS != nil])
	}), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(hl) }()

	var silent []net.Conn
	for range 10 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		silent = append(silent, c)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for scheme, want := range map[string]string{"http": "plain", "https": "tls"} {
		resp, err := client.Get(scheme + "://" + ln.Addr().String() + "/")
		if err != nil {
			t.Fatalf("%s: %v", scheme, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != want {
			t.Errorf("%s served %q", scheme, b)
		}
	}
	if n := len(dropped); n < 6 {
		t.Errorf("%d silent connections dropped, want at least 6 of 10 under a cap of 4", n)
	}
	_ = silent[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent[0].Read(make([]byte, 1)); err == nil {
		t.Error("the oldest silent connection is still open")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != http.ErrServerClosed {
		t.Fatalf("Serve = %v", err)
	}
	hl.Wait()
	if _, err := hl.Accept(); err == nil {
		t.Fatal("Accept after Close")
	}
}
