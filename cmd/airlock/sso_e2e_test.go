package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"github.com/airlock-gw/airlock/cmd/airlock/config"
	"github.com/airlock-gw/airlock/protocols/testenv"
)

var (
	loginURLRE  = regexp.MustCompile(`in your browser:\n  (\S+)`)
	deviceURLRE = regexp.MustCompile(`open\n  (\S+)\nand enter the code\n  (\S+)`)
)

// TestSSOLoginOIDC: airlock login through the browser with the OpenID
// provider writes client settings that psql uses as they are; pgx takes the
// credential too; recordings and approval requests name the person and the
// provider; logout revokes it, on the next command of an open session too.
func TestSSOLoginOIDC(t *testing.T) {
	t.Parallel()
	e := newSSOEnv(t)
	db := testenv.PostgresDB(t)
	in := e.start(t, e.config(t, db, "", "approvals:\n  mode: retry\n  reviewers: [dev]\n"))
	home := t.TempDir()
	login := ssoCLI(t, in, home, "login", "--provider", "okta", "--no-browser")
	url := login.await(t, loginURLRE)[1]
	ctx := newChromium(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), "alice@corp"),
		chromedp.SendKeys(chromedp.CSS(`#password`), ssoPassword),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#done`)),
	); err != nil {
		t.Fatalf("browser: %v", err)
	}
	out := login.wait(t)
	if !strings.Contains(out, "Signed in as alice@corp via okta") || !strings.Contains(out, "psql service=airlock-main") {
		t.Fatalf("airlock login:\n%s", out)
	}
	for _, f := range []string{".pgpass", ".pg_service.conf", ".config/airlock/env"} {
		fi, err := os.Stat(filepath.Join(home, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, fi, err)
		}
	}
	// psql with nothing but the service name.
	if got, err := psqlAs(t, home, "service=airlock-main", "-c", "SELECT 'through sso' AS via"); err != nil || !strings.Contains(got, "through sso") {
		t.Fatalf("psql service=airlock-main: %v\n%s", err, got)
	}
	cred := credentialOf(t, home)
	c := pgxConnect(t, ssoURL(in, cred))
	simple := pgxConnect(t, ssoURL(in, cred)+"&default_query_exec_mode=simple_protocol")
	bg := context.Background()
	var one int
	for _, conn := range []*pgx.Conn{c, simple} {
		if err := conn.QueryRow(bg, "SELECT 1").Scan(&one); err != nil {
			t.Fatalf("pgx: %v", err)
		}
	}
	// The approval request names the person and the provider.
	createTable(t, db, "t_sso")
	_, err := c.Exec(bg, "DROP TABLE t_sso")
	show := approvalsCLI(t, in, "show", approvalRequestOf(t, err))
	if !regexp.MustCompile(`Caller\s+alice@corp .*via sso:okta`).MatchString(show) {
		t.Fatalf("approval request:\n%s", show)
	}
	// So does the session index, and the metrics count the provider.
	// A starting session reaches the index within a couple of seconds
	// (starts are inserted in batches).
	listed := regexp.MustCompile(`"name":\s*"alice@corp",[^}]*"method":\s*"sso:okta"`)
	var sessions string
	var code int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		sessions, code = airlockCmd(t, in, "sessions", "list", "--config", "airlock.yaml", "--identity", "alice@corp", "--json")
		if code == 0 && listed.MatchString(sessions) || time.Now().After(deadline) {
			break
		}
	}
	if code != 0 || !listed.MatchString(sessions) {
		t.Fatalf("sessions list (%d):\n%s", code, sessions)
	}
	m := in.metrics(t)
	for _, want := range []string{`airlock_sso_logins_total{flow="cli",provider="okta",result="ok"} 1`,
		`airlock_sso_credentials_issued_total{provider="okta",purpose="cli"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s:\n%s", want, grep(m, "airlock_sso"))
		}
	}
	list := ssoCLI(t, in, home, "login", "--list").wait(t)
	if !strings.Contains(list, "alice@corp") || !strings.Contains(list, "okta") || !strings.Contains(list, "active") {
		t.Fatalf("login --list:\n%s", list)
	}
	if strings.Contains(list, cred) || strings.Contains(in.Logs(), cred) {
		t.Fatal("the credential was printed or logged")
	}

	out = ssoCLI(t, in, home, "logout").wait(t)
	if !strings.Contains(out, "Revoked credential") {
		t.Fatalf("airlock logout:\n%s", out)
	}
	if b, _ := os.ReadFile(filepath.Join(home, ".pgpass")); strings.Contains(string(b), cred) {
		t.Fatal("logout left the credential in .pgpass")
	}
	// The open sessions' next command is refused: a statement with the
	// reason, a run of a prepared statement by ending the session. A new
	// login is refused too.
	if err := simple.QueryRow(bg, "SELECT 2").Scan(&one); err == nil || !strings.Contains(err.Error(), "login credential was revoked") {
		t.Fatalf("a statement after logout: %v", err)
	}
	if err := c.QueryRow(bg, "SELECT 1").Scan(&one); pgCode(err) != "28000" || !strings.Contains(err.Error(), "login credential was revoked") {
		t.Fatalf("a prepared statement after logout: %v (want 28000 with the reason)", err)
	}
	if _, err := pgxConnectErr(ssoURL(in, cred)); err == nil {
		t.Fatal("a revoked credential logged in")
	}
}

// TestSSODeviceLoginExpires: airlock login --device for a terminal without
// a browser; the credential's expiry refuses new logins at once and an
// open session's commands after the grace.
func TestSSODeviceLoginExpires(t *testing.T) {
	t.Parallel()
	e := newSSOEnv(t)
	db := testenv.PostgresDB(t)
	in := e.start(t, e.config(t, db, "  lifetime: 6s\n  grace: 3s\n", ""))
	home := t.TempDir()
	login := ssoCLI(t, in, home, "login", "--device", "--provider", "okta")
	m := login.await(t, deviceURLRE)
	ctx := newChromium(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(m[1]),
		chromedp.WaitVisible(chromedp.CSS(`#user_code`)),
		chromedp.SendKeys(chromedp.CSS(`#user_code`), m[2]),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), "alice@corp"),
		chromedp.SendKeys(chromedp.CSS(`#password`), ssoPassword),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`button.green`)),
		chromedp.Click(chromedp.CSS(`button.green`)),
	); err != nil {
		t.Fatalf("browser: %v", err)
	}
	if out := login.wait(t); !strings.Contains(out, "Signed in as alice@corp via okta") {
		t.Fatalf("airlock login --device:\n%s", out)
	}
	issued := time.Now()
	if got, err := psqlAs(t, home, "service=airlock-main", "-c", "SELECT 'device' AS via"); err != nil || !strings.Contains(got, "device") {
		t.Fatalf("psql: %v\n%s", err, got)
	}
	cred := credentialOf(t, home)
	c := pgxConnect(t, ssoURL(in, cred)+"&default_query_exec_mode=simple_protocol")
	bg := context.Background()
	time.Sleep(time.Until(issued.Add(6500 * time.Millisecond)))
	if _, err := pgxConnectErr(ssoURL(in, cred)); err == nil || pgCode(err) != "28P01" {
		t.Fatalf("a new login after expiry: %v", err)
	}
	var one int
	if err := c.QueryRow(bg, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("an open session within the grace: %v", err)
	}
	time.Sleep(time.Until(issued.Add(9500 * time.Millisecond)))
	err := c.QueryRow(bg, "SELECT 1").Scan(&one)
	if err == nil || !strings.Contains(err.Error(), "expired") || !strings.Contains(err.Error(), "airlock login") {
		t.Fatalf("an open session past the grace: %v", err)
	}
}

// TestSSOReviewersPage signs in to the reviewers' page with SAML (an
// encrypted, signed assertion) and with OpenID Connect, and approves a held
// statement each time.
func TestSSOReviewersPage(t *testing.T) {
	e := newSSOEnv(t)
	db := testenv.PostgresDB(t)
	in := e.start(t, e.config(t, db, "", "approvals:\n  mode: hold\n  timeout: 5m\n  reviewers: [group:reviewers]\n"))
	dsn := in.dsn("dev", devToken, "main", "sslmode=disable")
	ctx := newChromium(t)
	approve := func(provider string, signIn chromedp.Action[chromedp.Void], table string) {
		t.Helper()
		createTable(t, db, table)
		h := startHeld(t, dsn, "DROP TABLE "+table)
		if err := chromedp.Do(ctx,
			chromedp.Navigate("http://"+in.admin+"/approvals"),
			chromedp.WaitVisible(chromedp.CSS(`#sso-`+provider)),
			chromedp.Click(chromedp.CSS(`#sso-`+provider)),
			signIn,
			chromedp.WaitVisible(chromedp.CSS(`#approve-`+h.id)),
		); err != nil {
			t.Fatalf("browser (%s): %v\n%s", provider, err, in.Logs())
		}
		who, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`body > header span`)))
		if err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#approve-`+h.id)), chromedp.WaitVisible(chromedp.CSS(`#flash`))); err != nil {
			t.Fatalf("approve: %v", err)
		}
		if !strings.Contains(who, "alice@corp") || !strings.Contains(who, "sso:"+provider) {
			t.Errorf("the page says %q", who)
		}
		if out := h.wait(t); !strings.Contains(out, "DROP TABLE") {
			t.Fatalf("held command not released:\n%s", out)
		}
		var got struct {
			Decisions []struct{ Reviewer string }
		}
		req, _ := http.NewRequest("GET", "http://"+in.admin+"/api/approvals/"+h.id, nil)
		req.Header.Set("Authorization", "Bearer "+devToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_ = json.NewDecoder(resp.Body).Decode(&got)
		if len(got.Decisions) != 1 || got.Decisions[0].Reviewer != "alice@corp" {
			t.Fatalf("decisions %+v", got.Decisions)
		}
	}
	approve("corp-saml", chromedp.Steps(
		chromedp.WaitVisible(chromedp.CSS(`input[name=user]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=user]`), "alice@corp"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), ssoPassword),
		chromedp.Click(chromedp.CSS(`input[type=submit]`)),
	), "t_saml")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#logout`)), chromedp.WaitVisible(chromedp.CSS(`#token`))); err != nil {
		t.Fatalf("sign out: %v", err)
	}
	approve("okta", chromedp.Steps(
		chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), "alice@corp"),
		chromedp.SendKeys(chromedp.CSS(`#password`), ssoPassword),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
	), "t_oidc")
	// The sign-out revoked the SAML sign-in's credential; dev, an sso
	// admin, lists everyone's.
	out := ssoCLIEnv(t, in, t.TempDir(), []string{"AIRLOCK_TOKEN=" + devToken}, "login", "--list", "--all", "--ended").wait(t)
	if !regexp.MustCompile(`alice@corp\s+corp-saml\s+web\s+reviewers' page\s+\S+ \S+\s+revoked by alice@corp`).MatchString(out) {
		t.Fatalf("the signed-out credential is not revoked:\n%s", out)
	}
	if m := in.metrics(t); !strings.Contains(m, `airlock_sso_logins_total{flow="web",provider="corp-saml",result="ok"} 1`) {
		t.Errorf("metrics:\n%s", grep(m, "airlock_sso"))
	}

}

// TestSSOConfig: the sso block decodes strictly and reports its problems
// with their paths, with the rest of the file's.
func TestSSOConfig(t *testing.T) {
	base := strings.Replace(baseConfig("db", "", ""), "identities:", `sso:
  base_url: https://airlock.corp:19090
  lifetime: 8h
  providers:
    - name: okta
      type: oidc
      issuer: https://corp.okta.com
      client_id: airlock
      client_secret: ${OKTA_SECRET}
    - name: corp-saml
      type: saml
      metadata_url: https://idp.corp/metadata
      groups_claim: memberOf
identities:`, 1)
	env := func(k string) (string, bool) {
		return map[string]string{"OKTA_SECRET": "s", "TEST_UPSTREAM_PASSWORD": "p"}[k], true
	}
	cfg, err := config.Parse([]byte(base), env, engines()...)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SSO == nil || len(cfg.SSO.Providers) != 2 || cfg.SSO.Providers[0].ClientSecret.Reveal() != "s" {
		t.Fatalf("sso %+v", cfg.SSO)
	}
	bad := strings.Replace(base, "      groups_claim: memberOf", "      group_claim: memberOf", 1)
	if _, err := config.Parse([]byte(bad), env, engines()...); err == nil || !strings.Contains(err.Error(), "sso.providers[1].group_claim: unknown key") {
		t.Fatalf("an unknown key: %v", err)
	}
	bad = strings.Replace(base, "  lifetime: 8h", "  lifetime: 1000h", 1)
	bad = strings.Replace(bad, "      metadata_url: https://idp.corp/metadata\n", "", 1)
	_, err = config.Parse([]byte(bad), env, engines()...)
	if err == nil || !strings.Contains(err.Error(), "sso.lifetime: 1000h0m0s out of range") || !strings.Contains(err.Error(), "sso.providers[1].metadata_url") {
		t.Fatalf("a bad sso block: %v", err)
	}
}
