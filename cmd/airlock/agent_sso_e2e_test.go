package main

import (
	"context"
	"net"
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

// nonLoopback is an IPv4 address of this machine other than loopback, or
// "" when it has none.
func nonLoopback() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	return ""
}

// TestSSOCredentialOnMySQLAndAgents: a short-lived credential is accepted
// by the mariadb client, over TLS and without it (caching_sha2_password's
// fast path checks its proof against the SHA-256 the store keeps, so the
// credential never crosses the network), by go-sql-driver, and by the
// query API as a bearer token; sessions name the person and the provider;
// logging out refuses new logins and an open session's next command. The
// MySQL listener is on a non-loopback address when the machine has one, so
// that no secret is accepted in clear and only the fast path admits
// without TLS.
func TestSSOCredentialOnMySQLAndAgents(t *testing.T) {
	e := newSSOEnv(t)
	pgDB := testenv.PostgresDB(t)
	myDB := mariadbDatabase(t)
	host := nonLoopback()
	if host == "" {
		t.Log("no non-loopback address: the MySQL listener is on loopback, where a secret may also come in full without TLS")
		host = "127.0.0.1"
	}
	cfg := e.config(t, pgDB, "", "")
	cfg = strings.Replace(cfg, "listen:\n  postgres: 127.0.0.1:0\n", "listen:\n  postgres: 127.0.0.1:0\n  mysql: "+host+":0\n  http: 127.0.0.1:0\n", 1)
	cfg = strings.Replace(cfg, "connections:\n", "connections:\n"+strings.Replace(mysqlConn(myDB, ""), "allow: [dev, agent]", "allow: [dev, group:developers]", 1), 1)
	in := e.start(t, cfg)
	my := &mysqlInstance{instance: in, addr: in.addr("mysql"), db: myDB}
	api := &agentInstance{instance: in, base: "http://" + in.addr("http")}
	cred := issueCredential(t, in)

	for _, tls := range []string{"--ssl", "--skip-ssl"} {
		out, err := my.mariadbCLI(t, "alice@corp", cred, "mysql", "", tls, "-N", "-e", "SELECT 'signed in'")
		if err != nil || !strings.Contains(out, "signed in") {
			t.Fatalf("mariadb %s with the credential: %v\n%s", tls, err, out)
		}
	}
	for _, tc := range []struct{ user, token string }{{"bob@corp", cred}, {"alice@corp", cred[:len(cred)-1] + "x"}} {
		if out, _ := my.mariadbCLI(t, tc.user, tc.token, "mysql", "", "--skip-ssl", "-N", "-e", "SELECT 1"); !strings.Contains(out, "ERROR 1045") {
			t.Fatalf("%s with a credential not theirs: %s", tc.user, out)
		}
	}
	cfgDriver := my.driverConfig("alice@corp", cred, "mysql")
	open := openDriver(t, cfgDriver)
	open.SetMaxOpenConns(1)
	var via string
	if err := open.QueryRow("SELECT 'go-sql-driver'").Scan(&via); err != nil || via != "go-sql-driver" {
		t.Fatalf("go-sql-driver without TLS: %v", err)
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
		return code == 0 && len(listed.FindAllString(s, -1)) >= 4
	}) {
		t.Fatal("the sessions of the mariadb client, go-sql-driver and the query API do not name alice@corp via sso:okta")
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
	for _, tls := range []string{"--ssl", "--skip-ssl"} {
		if out, _ := my.mariadbCLI(t, "alice@corp", cred, "mysql", "", tls, "-N", "-e", "SELECT 1"); !strings.Contains(out, "ERROR 1045") {
			t.Fatalf("mariadb %s after logout: %s", tls, out)
		}
	}
	if err := open.QueryRow("SELECT 1").Scan(&via); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("the open go-sql-driver session after logout: %v", err)
	}
}
