package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/session/identity"
	"github.com/airlock-gw/airlock/session/identity/sso/ssotest"
)

const ssoPassword = "correct horse"

var ssoUsers = []ssotest.User{
	{Name: "alice@corp", Password: ssoPassword, Groups: []string{"developers", "reviewers"}},
}

// freePort returns a loopback port nothing listens on now: the admin
// listener's address must be known before Airlock starts, for the
// identity providers' redirect and assertion consumer URLs.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// ssoEnv is an OpenID provider and a SAML identity provider in the test's
// process, and the configuration of an Airlock that uses both.
type ssoEnv struct {
	admin string // host:port of the admin listener
	oidc  *ssotest.OIDC
	saml  *ssotest.SAML
	dir   string
}

func newSSOEnv(t *testing.T) *ssoEnv {
	t.Helper()
	e := &ssoEnv{admin: fmt.Sprintf("127.0.0.1:%d", freePort(t)), dir: t.TempDir()}
	e.oidc = ssotest.NewOIDC(t, ssoUsers, ssotest.Client{ID: "airlock", Secret: "oidc-client-secret",
		RedirectURIs: []string{"http://" + e.admin + "/sso/okta/callback"}})
	e.saml = ssotest.NewSAML(t, ssoUsers)
	return e
}

// config is an Airlock in front of database db with both providers;
// sso adds lines to the sso block, extra top-level blocks.
func (e *ssoEnv) config(t *testing.T, db, sso, extra string) string {
	t.Helper()
	key, cert := ssotest.KeyPair(t, "airlock service provider")
	keyFile, certFile := filepath.Join(e.dir, "sp.key"), filepath.Join(e.dir, "sp.crt")
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`
listen:
  postgres: 127.0.0.1:0
  admin: %s
log:
  level: debug
  format: text
identities:
  - name: dev
    groups: [developers]
    token_sha256: %s
connections:
  - name: main
    protocol: postgres
    upstream:
      address: %s
      database: %s
      user: postgres
      password: ${TEST_UPSTREAM_PASSWORD}
      tls: {mode: disable}
    allow: [dev, group:developers]
sso:
  base_url: http://%s
  admins: [dev]
  providers:
    - name: okta
      label: Okta
      type: oidc
      issuer: %s
      client_id: airlock
      client_secret: oidc-client-secret
    - name: corp-saml
      label: Corp SAML
      type: saml
      metadata_url: %s
      groups_claim: eduPersonAffiliation
      key_file: %s
      cert_file: %s
%s
%s
`, e.admin, devTokenHash, testenv.PostgresAddr, db, e.admin, e.oidc.Issuer, e.saml.MetadataURL, keyFile, certFile, sso, extra)
}

// start runs Airlock and registers it with the SAML identity provider.
func (e *ssoEnv) start(t *testing.T, cfg string) *instance {
	t.Helper()
	in := startAirlock(t, cfg)
	e.saml.RegisterSP(t, "airlock", "http://"+in.admin+"/sso/corp-saml/metadata")
	return in
}

// cliRun is a running `airlock login` or `airlock logout`.
type cliRun struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan error
}

type lockedBuf struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (w lockedBuf) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// cliEnv is the environment of a person whose home is home, talking to in.
func cliEnv(in *instance, home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "HOME", k == "XDG_CONFIG_HOME", strings.HasPrefix(k, "PG"), strings.HasPrefix(k, "AIRLOCK_"):
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+home, "AIRLOCK_SERVER=http://"+in.admin)
}

// airlockCLI starts `airlock args...` as the person whose home is home.
func ssoCLI(t *testing.T, in *instance, home string, args ...string) *cliRun {
	t.Helper()
	return ssoCLIEnv(t, in, home, nil, args...)
}

// airlockCLIEnv is airlockCLI with more environment variables.
func ssoCLIEnv(t *testing.T, in *instance, home string, env []string, args ...string) *cliRun {
	t.Helper()
	r := &cliRun{cmd: exec.Command(airlockBin(t), args...), done: make(chan error, 1)}
	r.cmd.Env = append(cliEnv(in, home), env...)
	r.cmd.Stdout = lockedBuf{&r.mu, &r.stdout}
	r.cmd.Stderr = lockedBuf{&r.mu, &r.stderr}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- r.cmd.Wait() }()
	t.Cleanup(func() { _ = r.cmd.Process.Kill() })
	return r
}

func (r *cliRun) output() (string, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stdout.String(), r.stderr.String()
}

// await waits for re in stderr and returns its submatches.
func (r *cliRun) await(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		_, errOut := r.output()
		if m := re.FindStringSubmatch(errOut); m != nil {
			return m
		}
		select {
		case err := <-r.done:
			out, errOut := r.output()
			t.Fatalf("airlock %v ended (%v) before printing %s:\n%s%s", r.cmd.Args[1:], err, re, out, errOut)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("airlock %v did not print %s", r.cmd.Args[1:], re)
	return nil
}

// wait waits for the command's end and fails the test unless it succeeded.
func (r *cliRun) wait(t *testing.T) string {
	t.Helper()
	select {
	case err := <-r.done:
		out, errOut := r.output()
		if err != nil {
			t.Fatalf("airlock %v: %v\n%s%s", r.cmd.Args[1:], err, out, errOut)
		}
		return out
	case <-time.After(60 * time.Second):
		out, errOut := r.output()
		t.Fatalf("airlock %v still running:\n%s%s", r.cmd.Args[1:], out, errOut)
	}
	return ""
}

// psqlAs runs psql as the person whose home is home: libpq reads the
// service and password files airlock login wrote there.
func psqlAs(t *testing.T, home string, args ...string) (string, error) {
	t.Helper()
	needPsql(t)
	cmd := exec.Command("psql", append([]string{"-X", "--no-psqlrc", "-v", "ON_ERROR_STOP=1"}, args...)...)
	cmd.Env = append(cliEnv(&instance{}, home), "PGCONNECT_TIMEOUT=10")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// ssoURL is a pgx URL through in for a person signed in with credential.
func ssoURL(in *instance, credential string) string {
	return fmt.Sprintf("postgres://%s:%s@%s/main?sslmode=disable", "alice%40corp", credential, in.pgAddr)
}

// credentialOf reads the credential airlock login wrote into home.
func credentialOf(t *testing.T, home string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(home, ".config", "airlock", "env"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`REDISCLI_AUTH=(` + regexp.QuoteMeta(identity.ShortLivedPrefix) + `\S+)`).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatalf("no credential in the env file:\n%s", b)
	}
	return m[1]
}
