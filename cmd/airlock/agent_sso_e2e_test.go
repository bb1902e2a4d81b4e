package main

import (
	"context"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/session/identity/sso"
	"github.com/airlock-gw/airlock/session/sqldb"
)

// issueCredential issues a short-lived credential for alice@corp
// (developers) in the instance's own store, as a sign-in through okta
// would.
func issueCredential(t *testing.T, in *instance) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	db, err := sqldb.Open(ctx, sqldb.Config{DSN: protocols.Secret("file:" + filepath.Join(in.dir, sqldb.DefaultSQLitePath))})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := sso.OpenStore(ctx, db, sso.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := st.Issue(ctx, sso.Credential{Identity: ssoIdentity(), Provider: "okta", Purpose: sso.PurposeCLI, Client: "e2e"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

func ssoIdentity() protocols.Identity {
	return protocols.Identity{Name: "alice@corp", Groups: []string{"developers"}}
}

// TestSSOCredentialOnMySQLAndAgents: a short-lived credential is accepted
// by the mariadb client (over TLS, or on loopback through the RSA key
// exchange: caching_sha2_password's fast path knows only static tokens'
// hashes, so the client sends the credential in full) and by the query API as a bearer token; sessions name the person and
// the provider; logging out refuses both at once.
func TestSSOCredentialOnMySQLAndAgents(t *testing.T) {
	e := newSSOEnv(t)
	pgDB := testenv.PostgresDB(t)
	myDB := mariadbDatabase(t)
	cfg := e.config(t, pgDB, "", "")
	cfg = strings.Replace(cfg, "listen:\n  postgres: 127.0.0.1:0\n", "listen:\n  postgres: 127.0.0.1:0\n  mysql: 127.0.0.1:0\n  http: 127.0.0.1:0\n", 1)
	cfg = strings.Replace(cfg, "connections:\n", "connections:\n"+strings.Replace(mysqlConn(myDB, ""), "allow: [dev, agent]", "allow: [dev, group:developers]", 1), 1)
	in := e.start(t, cfg)
	my := &mysqlInstance{instance: in, addr: in.addr("mysql"), db: myDB}
	api := &agentInstance{instance: in, base: "http://" + in.addr("http")}
	cred := issueCredential(t, in)

	out, err := my.mariadbCLI(t, "alice@corp", cred, "mysql", "", "--ssl", "-N", "-e", "SELECT 'sso over tls'")
	if err != nil || !strings.Contains(out, "sso over tls") {
		t.Fatalf("mariadb --ssl with the credential: %v\n%s", err, out)
	}
	// On loopback, full authentication without TLS goes through the RSA
	// key exchange Airlock offers only there.
	if out, err := my.mariadbCLI(t, "alice@corp", cred, "mysql", "", "--skip-ssl", "-N", "-e", "SELECT 'sso on loopback'"); err != nil ||
		!strings.Contains(out, "sso on loopback") {
		t.Fatalf("mariadb --skip-ssl on loopback with the credential: %v\n%s", err, out)
	}
	if out, _ := my.mariadbCLI(t, "bob@corp", cred, "mysql", "", "--ssl", "-N", "-e", "SELECT 1"); !strings.Contains(out, "ERROR 1045") {
		t.Fatalf("the credential under another name: %s", out)
	}

	r := api.do(t, call{method: "GET", path: "/v1/connections", token: cred})
	if r.status != 200 || !strings.Contains(r.body, `"name":"mysql"`) || !strings.Contains(r.body, `"name":"main"`) {
		t.Fatalf("connections with the credential: %d %s", r.status, r.body)
	}
	q := queryCall("mysql", "SELECT 'sso over http' AS via")
	q.token = cred
	if r := api.do(t, q); r.status != 200 || !strings.Contains(r.body, "sso over http") {
		t.Fatalf("query with the credential: %d %s", r.status, r.body)
	}
	listed := regexp.MustCompile(`"name":\s*"alice@corp",[^}]*"method":\s*"sso:okta"`)
	if !pollUntil(10*time.Second, func() bool {
		s, code := airlockCmd(t, in, "sessions", "list", "--config", "airlock.yaml", "--identity", "alice@corp", "--json")
		return code == 0 && len(listed.FindAllString(s, -1)) >= 2
	}) {
		t.Fatal("the sessions of the mariadb client and of the query API do not name alice@corp via sso:okta")
	}
	if strings.Contains(in.Logs(), cred) {
		t.Fatal("the credential was logged")
	}

	req, _ := http.NewRequest("POST", "http://"+in.admin+"/api/sso/logout", nil)
	req.Header.Set("Authorization", "Bearer "+cred)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if r := api.do(t, q); r.status != 401 {
		t.Fatalf("the query API after logout: %d %s", r.status, r.body)
	}
	if out, _ := my.mariadbCLI(t, "alice@corp", cred, "mysql", "", "--ssl", "-N", "-e", "SELECT 1"); !strings.Contains(out, "ERROR 1045") {
		t.Fatalf("mariadb after logout: %s", out)
	}
}
