package wire

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	driver "github.com/go-sql-driver/mysql"
)

const testJWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2ln"

func newLoginServer(t *testing.T, withTLS bool) (*testServer, string) {
	t.Helper()
	s := &testServer{
		key:    serverKey(t),
		tokens: map[string][32]byte{"alice": tokenHash(testToken)},
		jwt:    func(user, pw string) bool { return user == "bob" && pw == testJWT },
	}
	caFile := ""
	if withTLS {
		s.tls, caFile = selfSigned(t)
	}
	return startTestServer(t, s), caFile
}

// driverQuery logs in with go-sql-driver/mysql and returns the server's
// answer to a query: the caller's name, how they proved it, and the auth
// plugin their client started with.
func driverQuery(t *testing.T, addr, user, password, caFile string) (string, error) {
	t.Helper()
	cfg := driver.NewConfig()
	cfg.Net, cfg.Addr, cfg.User, cfg.Passwd, cfg.DBName = "tcp", addr, user, password, "orders"
	cfg.Timeout = 10 * time.Second
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(pem)
		cfg.TLS = &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
	}
	conn, err := driver.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		return "", err
	}
	var who string
	err = db.QueryRowContext(ctx, "SELECT who").Scan(&who)
	return who, err
}

func TestGoDriverLogin(t *testing.T) {
	cases := []struct {
		name     string
		tls      bool
		user, pw string
		want     string
	}{
		{"token fast path, plain", false, "alice", testToken, "alice scramble caching_sha2_password"},
		{"token fast path, TLS", true, "alice", testToken, "alice scramble caching_sha2_password"},
		{"JWT full authentication over TLS", true, "bob", testJWT, "bob jwt caching_sha2_password"},
		{"JWT full authentication with RSA on plain TCP", false, "bob", testJWT, "bob jwt caching_sha2_password"},
		{"token of another identity, by full authentication", false, "bob", testToken, ""},
		{"wrong token", true, "alice", "nope", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, caFile := newLoginServer(t, tc.tls)
			who, err := driverQuery(t, s.addr, tc.user, tc.pw, caFile)
			if tc.want == "" {
				var me *driver.MySQLError
				if !errors.As(err, &me) || me.Number != CodeAccessDenied || string(me.SQLState[:]) != "28000" {
					t.Fatalf("err = %v, want access denied 1045 (28000)", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if who != tc.want {
				t.Errorf("server says %q, want %q", who, tc.want)
			}
		})
	}
}

func TestMariaDBClientLogin(t *testing.T) {
	cli, err := exec.LookPath("mariadb")
	if err != nil {
		if cli, err = exec.LookPath("mysql"); err != nil {
			t.Skip("no mariadb or mysql client installed")
		}
	}
	cases := []struct {
		name     string
		tls      bool
		user, pw string
		args     []string
		want     string
	}{
		{"token over TLS", true, "alice", testToken, []string{"--ssl"}, "alice scramble caching_sha2_password"},
		{"token without TLS", false, "alice", testToken, []string{"--skip-ssl"}, "alice scramble caching_sha2_password"},
		{"JWT over TLS", true, "bob", testJWT, []string{"--ssl"}, "bob jwt caching_sha2_password"},
		{"JWT with RSA without TLS", false, "bob", testJWT, []string{"--skip-ssl"}, "bob jwt caching_sha2_password"},
		{"clear password plugin over TLS", true, "bob", testJWT,
			[]string{"--ssl", "--default-auth=mysql_clear_password"}, "bob jwt mysql_clear_password"},
		{"client starting with mysql_native_password is switched", false, "alice", testToken,
			[]string{"--skip-ssl", "--default-auth=mysql_native_password"}, "alice scramble mysql_native_password"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newLoginServer(t, tc.tls)
			host, port, _ := strings.Cut(s.addr, ":")
			args := append([]string{"--no-defaults", "-h", host, "-P", port, "-u", tc.user, "-p" + tc.pw,
				"--connect-timeout=10", "-N", "-B", "-e", "select who", "orders"}, tc.args...)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, cli, args...).Output()
			if err != nil {
				var exit *exec.ExitError
				if errors.As(err, &exit) {
					t.Fatalf("%s: %v\n%s", cli, err, exit.Stderr)
				}
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(out)); got != tc.want {
				t.Errorf("client printed %q, want %q", got, tc.want)
			}
		})
	}
}
