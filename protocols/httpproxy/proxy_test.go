package httpproxy

import (
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUpstreamTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	e := New()
	get := func(block string) error {
		t.Helper()
		up, err := e.Upstream(decodeYAML("url: " + srv.URL + "\n" + block))
		if err != nil {
			t.Fatal(err)
		}
		c := up.(*compiled)
		res, err := (&http.Client{Transport: c.dial.transport}).Get(srv.URL)
		if err == nil {
			res.Body.Close()
		}
		return err
	}
	if err := get("tls: {ca_file: " + ca + ", server_name: example.com}"); err != nil {
		t.Errorf("verify-full with the CA and the certificate's name: %v", err)
	}
	if err := get("tls: {ca_file: " + ca + ", server_name: other.example}"); err == nil {
		t.Error("a certificate for another name was accepted")
	}
	if err := get(""); err == nil {
		t.Error("an unknown CA was accepted")
	}
	if err := get("tls: {mode: require}"); err != nil {
		t.Errorf("require: %v", err)
	}
}

func TestTargetAndHost(t *testing.T) {
	p := &proxy{settings: Settings{Domain: "gw.example.com"}}
	for _, tc := range []struct{ host, path, name, rest string }{
		{"127.0.0.1:18080", "/proxy/api/v1/users", "api", "/v1/users"},
		{"127.0.0.1:18080", "/proxy/api", "api", "/"},
		{"127.0.0.1:18080", "/proxy/api/a%2Fb", "api", "/a%2Fb"},
		{"api.gw.example.com", "/v1/users", "api", "/v1/users"},
		{"API.GW.EXAMPLE.COM:443", "/", "api", "/"},
		{"x.api.gw.example.com", "/proxy/y/z", "y", "/z"},
	} {
		r := httptest.NewRequest("GET", "http://"+tc.host+tc.path, nil)
		name, rest, ok := p.target(r)
		if !ok || name != tc.name || rest != tc.rest {
			t.Errorf("%s%s: %q %q %v", tc.host, tc.path, name, rest, ok)
		}
	}
	if _, _, ok := p.target(httptest.NewRequest("GET", "http://127.0.0.1/v1/users", nil)); ok {
		t.Error("a path outside /proxy/ was taken")
	}
}

func TestCallerTokenAndPrefer(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Api-Key", "tok")
	if tok, ok := callerToken(r, "X-Api-Key"); !ok || tok.Reveal() != "tok" {
		t.Errorf("caller header: %v", ok)
	}
	r.Header.Set("Authorization", "Bearer abc")
	if tok, _ := callerToken(r, "X-Api-Key"); tok.Reveal() != "abc" {
		t.Error("bearer first")
	}
	r.Header.Set("Prefer", "respond-async, wait=100")
	if !prefersWait(r) {
		t.Error("Prefer: wait")
	}
	if got := grpcEscape("50% done\nok"); got != "50%25 done%0Aok" {
		t.Errorf("grpc escape: %q", got)
	}
	var got []string
	for _, a := range sqlIn(`{"sql":"DROP TABLE t","note":"select the best","q":["DELETE FROM x WHERE 1=1"],"n":1}`) {
		got = append(got, fmt.Sprint(a.sql, " ", a.named))
	}
	if strings.Join(got, "|") != "select the best false|DELETE FROM x WHERE 1=1 false|DROP TABLE t true" {
		t.Errorf("sqlIn: %q", got)
	}
}
