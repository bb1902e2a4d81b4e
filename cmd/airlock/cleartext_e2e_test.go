package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols/redis/resp"
	"github.com/airlock-gw/airlock/protocols/testenv"
)

// cleartextConfig puts every listener on ip, an address other than
// loopback, with one connection per protocol.
func cleartextConfig(ip, pgDB, myDB, api string) string {
	return fmt.Sprintf(`
listen:
  postgres: %[1]s:0
  mysql: %[1]s:0
  redis: %[1]s:0
  http: %[1]s:0
  admin: %[1]s:0
log: {level: info, format: text}
debug: {pprof: true}
identities:
  - name: dev
    token_sha256: %[2]s
connections:
  - name: main
    protocol: postgres
    upstream: {address: %[3]s, database: %[4]s, user: postgres, password: "${TEST_UPSTREAM_PASSWORD}", tls: {mode: disable}}
    allow: [dev]
  - name: shop
    protocol: mysql
    upstream: {address: %[5]s, database: %[6]s, user: root, password: "", tls: {mode: prefer}}
    allow: [dev]
  - name: cache
    protocol: redis
    upstream: {address: %[7]s, database: 0}
    allow: [dev]
  - name: api
    protocol: http
    upstream: {url: "http://%[8]s"}
    allow: [dev]
`, ip, devTokenHash, testenv.PostgresAddr, pgDB, "127.0.0.1:3306", myDB, testenv.RedisAddr, api)
}

// TestCleartextRefusedOffLoopback: on listeners bound to an address other
// than loopback, every engine refuses a token sent without TLS, in its
// protocol's own form, and accepts it over TLS; the admin listener there
// does not serve /debug/pprof/ though debug.pprof is set.
func TestCleartextRefusedOffLoopback(t *testing.T) {
	ip := nonLoopback()
	if ip == "" {
		t.Skip("this machine has no address other than loopback")
	}
	testenv.Need(t, "Redis", testenv.RedisAddr)
	pgDB := testenv.PostgresDB(t)
	myDB := mariadbDatabase(t)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "upstream ok") }))
	t.Cleanup(upstream.Close)
	in := startAirlock(t, cleartextConfig(ip, pgDB, myDB, strings.TrimPrefix(upstream.URL, "http://")))

	t.Run("postgres", func(t *testing.T) {
		c, err := net.Dial("tcp", in.pgAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write(rawStartup("user", "dev", "database", "main"))
		if code := readError(t, c); code != "28000" {
			t.Fatalf("startup without TLS: SQLSTATE %q, want 28000 before any password is asked", code)
		}
		pgxConnect(t, strings.Replace(in.url("dev", devToken, "main", ""), "sslmode=disable", "sslmode=require", 1))
	})
	t.Run("mysql", func(t *testing.T) {
		m := &mysqlInstance{instance: in, addr: in.addr("mysql"), db: myDB}
		for _, tc := range []struct {
			name, token string
			args        []string
			want        string
		}{
			{"clear password without TLS", devToken, []string{"--skip-ssl", "--default-auth=mysql_clear_password", "--enable-cleartext-plugin"}, "mysql_clear_password is accepted only over TLS"},
			{"other secret without TLS", "a-jwt-or-a-wrong-token", []string{"--skip-ssl"}, "accepted only over TLS"},
			{"token proof without TLS", devToken, []string{"--skip-ssl"}, "ok"},
			{"clear password over TLS", devToken, []string{"--ssl", "--default-auth=mysql_clear_password", "--enable-cleartext-plugin"}, "ok"},
		} {
			out, _ := m.mariadbCLI(t, "dev", tc.token, "shop", "", append(tc.args, "-N", "-e", "SELECT 'ok'")...)
			if !strings.Contains(out, tc.want) {
				t.Errorf("%s: got %q, want %q", tc.name, out, tc.want)
			}
		}
	})
	t.Run("redis", func(t *testing.T) {
		for _, login := range [][]string{{"AUTH", "dev", devToken}, {"HELLO", "3", "AUTH", "dev", devToken}} {
			c := dialRaw(t, in.addr("redis"))
			if got := c.do(login...); !strings.Contains(got, "only over TLS") {
				t.Fatalf("%s without TLS: %s", login[0], got)
			}
			if _, err := c.readErr(); err == nil {
				t.Fatalf("%s without TLS: the connection stayed open", login[0])
			}
		}
		tc, err := tls.Dial("tcp", in.addr("redis"), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Close()
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		c := &redisConn{t: t, conn: tc, dec: resp.NewReplyDecoder(bufio.NewReader(tc), resp.ReplyOptions{})}
		if got := c.do("AUTH", "dev", devToken); got != "+OK" {
			t.Fatalf("AUTH over TLS: %s", got)
		}
	})
	t.Run("http", func(t *testing.T) {
		base := in.addr("http")
		for _, path := range []string{"/proxy/api/x", "/v1/connections"} {
			code, body := bearerGet(t, http.DefaultClient, "http://"+base+path)
			if code != http.StatusForbidden || !strings.Contains(body, "tls-required") {
				t.Fatalf("GET %s without TLS: %d %s", path, code, body)
			}
		}
		secure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		if code, body := bearerGet(t, secure, "https://"+base+"/proxy/api/x"); code != http.StatusOK || body != "upstream ok" {
			t.Fatalf("GET over TLS: %d %s", code, body)
		}
	})
	t.Run("admin", func(t *testing.T) {
		for path, want := range map[string]int{"/debug/pprof/": http.StatusNotFound, "/healthz": http.StatusOK} {
			resp, err := http.Get("http://" + in.admin + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Fatalf("GET %s on %s: %d, want %d", path, in.admin, resp.StatusCode, want)
			}
		}
		if !strings.Contains(in.Logs(), "debug.pprof is set but /debug/pprof/ is not served") {
			t.Fatal("no warning that pprof is not served off loopback")
		}
	})
	m := in.metrics(t)
	for _, p := range []string{"postgres", "mysql", "redis", "http"} {
		if metricValue(m, fmt.Sprintf(`airlock_auth_failures_total{protocol=%q,reason="tls"}`, p)) == 0 {
			t.Errorf("no %s refusal for TLS counted", p)
		}
	}
	if strings.Contains(in.Logs(), devToken) {
		t.Fatal("a token reached the log")
	}
}

// bearerGet GETs url with the dev token and returns the status and body.
func bearerGet(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+devToken)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
