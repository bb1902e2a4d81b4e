package wire

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	driver "github.com/go-sql-driver/mysql"

	"github.com/airlock-gw/airlock/protocols/testenv"
)

// queryOne sends COM_QUERY text on the handed-over connection and returns
// the first column of its single row, proving the session is usable raw.
func queryOne(t *testing.T, up *Upstream, text string) string {
	t.Helper()
	if _, err := WritePacket(up.Conn, 0, AppendQuery(nil, up.Capabilities, []byte(text))); err != nil {
		t.Fatal(err)
	}
	rs := readResult(t, NewPacketReader(bufio.NewReader(up.Conn), 0), up.Capabilities)
	if len(rs.rows) != 1 {
		t.Fatalf("%d rows, want 1", len(rs.rows))
	}
	values, err := DecodeTextRow(rs.rows[0], len(rs.cols), nil)
	if err != nil {
		t.Fatal(err)
	}
	return string(values[0])
}

func dialTest(t *testing.T, cfg DialConfig) (*Upstream, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	up, err := Dial(ctx, cfg)
	if err == nil {
		t.Cleanup(func() { up.Conn.Close() })
	}
	return up, err
}

func TestDialCachingSHA2(t *testing.T) {
	plain, _ := newLoginServer(t, false)
	withTLS, caFile := newLoginServer(t, true)
	pub := &serverKey(t).private.PublicKey
	_, otherCA := selfSigned(t)
	cases := []struct {
		name    string
		server  *testServer
		cfg     DialConfig
		wantTLS bool
		want    string // the server's answer, or a part of the error
	}{
		{"plain, fast path", plain, DialConfig{User: "alice", Password: testToken, TLS: TLSConfig{Mode: "disable"}}, false, "alice scramble"},
		{"plain, full authentication with the fetched key", plain, DialConfig{User: "bob", Password: testJWT}, false, "bob jwt"},
		{"plain, full authentication with a configured key", plain, DialConfig{User: "bob", Password: testJWT, ServerPublicKey: pub}, false, "bob jwt"},
		{"prefer takes TLS when offered", withTLS, DialConfig{User: "bob", Password: testJWT, TLS: TLSConfig{Mode: "prefer"}}, true, "bob jwt"},
		{"require, password in clear over TLS", withTLS, DialConfig{User: "bob", Password: testJWT, TLS: TLSConfig{Mode: "require"}}, true, "bob jwt"},
		{"require verifies the chain with a CA file", withTLS, DialConfig{User: "alice", Password: testToken, TLS: TLSConfig{Mode: "require", CAFile: caFile, ServerName: "db.example"}}, true, "alice scramble"},
		{"require with a CA file that did not sign", withTLS, DialConfig{User: "alice", Password: testToken, TLS: TLSConfig{Mode: "require", CAFile: otherCA}}, false, "certificate"},
		{"verify-full", withTLS, DialConfig{User: "alice", Password: testToken, TLS: TLSConfig{Mode: "verify-full", CAFile: caFile}}, true, "alice scramble"},
		{"verify-full, wrong name", withTLS, DialConfig{User: "alice", Password: testToken, TLS: TLSConfig{Mode: "verify-full", CAFile: caFile, ServerName: "db.example"}}, false, "certificate"},
		{"verify-full, unknown CA", withTLS, DialConfig{User: "alice", Password: testToken, TLS: TLSConfig{Mode: "verify-full"}}, false, "certificate"},
		{"require without TLS on the server", plain, DialConfig{User: "alice", Password: testToken, TLS: TLSConfig{Mode: "require"}}, false, "does not offer TLS"},
		{"unknown TLS mode", plain, DialConfig{User: "alice", Password: testToken, TLS: TLSConfig{Mode: "sometimes"}}, false, "tls mode"},
		{"wrong password", plain, DialConfig{User: "alice", Password: "wrong-" + testToken}, false, "1045"},
		{"wrong password over TLS", withTLS, DialConfig{User: "bob", Password: "wrong-" + testJWT, TLS: TLSConfig{Mode: "require"}}, false, "1045"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Address, cfg.Database = tc.server.addr, "orders"
			up, err := dialTest(t, cfg)
			if err == nil && up.TLS != tc.wantTLS {
				t.Errorf("TLS = %v, want %v", up.TLS, tc.wantTLS)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.want)
				}
				t.Logf("error: %v", err)
				if strings.Contains(err.Error(), cfg.Password) {
					t.Fatalf("error carries the password: %v", err)
				}
				return
			}
			if up.AuthPlugin != PluginCachingSHA2 || up.ServerVersion != "8.0.36-airlock" || up.ConnectionID != 7 {
				t.Errorf("negotiated %+v", up)
			}
			if up.Status&mysql.SERVER_STATUS_AUTOCOMMIT == 0 {
				t.Errorf("status %#x lacks autocommit", up.Status)
			}
			if up.Capabilities&mysql.CLIENT_QUERY_ATTRIBUTES == 0 || up.Capabilities&mysql.CLIENT_DEPRECATE_EOF == 0 {
				t.Errorf("capabilities %s lack flags the server offered", CapabilityNames(up.Capabilities))
			}
			if got := queryOne(t, up, "SELECT who"); got != tc.want+" caching_sha2_password" {
				t.Errorf("server says %q, want %q", got, tc.want)
			}
		})
	}
}

// mariadbUser creates a user with a password on the local MariaDB, allowed
// everything on the test database, and drops it when the test ends.
func mariadbUser(t *testing.T) (user, password string, admin *sql.DB) {
	t.Helper()
	testenv.Need(t, "MariaDB", testenv.MariaDBAddr)
	cfg := driver.NewConfig()
	cfg.Net, cfg.Addr, cfg.User, cfg.DBName = "tcp", testenv.MariaDBAddr, "root", "test"
	connector, err := driver.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	admin = sql.OpenDB(connector)
	t.Cleanup(func() { admin.Close() })
	user, password = testenv.Unique("airlock_up"), "pw-"+testenv.Unique("secret")
	stmts := []string{
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED VIA mysql_native_password USING PASSWORD('%s')", user, password),
		fmt.Sprintf("GRANT ALL ON test.* TO '%s'@'%%'", user),
	}
	for _, s := range stmts {
		if _, err := admin.Exec(s); err != nil {
			t.Fatalf("%s: %v", strings.Replace(s, password, "***", 1), err)
		}
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(fmt.Sprintf("DROP USER '%s'@'%%'", user)); err != nil {
			t.Errorf("drop user: %v", err)
		}
	})
	return user, password, admin
}

func TestDialMariaDB(t *testing.T) {
	user, password, _ := mariadbUser(t)
	up, err := dialTest(t, DialConfig{Address: testenv.MariaDBAddr, User: user, Password: password, Database: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if up.AuthPlugin != PluginNative || up.TLS || !strings.Contains(up.ServerVersion, "MariaDB") || up.ConnectionID == 0 {
		t.Errorf("negotiated %+v", up)
	}
	if up.Capabilities&mysql.CLIENT_QUERY_ATTRIBUTES != 0 {
		t.Error("CLIENT_QUERY_ATTRIBUTES negotiated with a server that does not offer it")
	}
	if err := CheckRelay(ClientCapabilities(up.ServerCapabilities, false), up.Capabilities|mysql.CLIENT_LONG_PASSWORD); err != nil {
		t.Errorf("what clients are offered and what the upstream negotiated differ: %v", err)
	}
	// A caller's choice among what it was offered is asked of the upstream
	// as is, so the two sessions can be relayed raw.
	callerCaps := clientCaps & ClientCapabilities(up.ServerCapabilities, false)
	mirrored, err := dialTest(t, DialConfig{Address: testenv.MariaDBAddr, User: user, Password: password, Capabilities: callerCaps})
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckRelay(callerCaps, mirrored.Capabilities); err != nil {
		t.Errorf("upstream session does not mirror the caller's: %v", err)
	}
	if got := queryOne(t, up, "SELECT 1"); got != "1" {
		t.Errorf("SELECT 1 = %q", got)
	}
	if got := queryOne(t, up, "SELECT CURRENT_USER()"); !strings.HasPrefix(got, user+"@") {
		t.Errorf("CURRENT_USER() = %q, want %s@...", got, user)
	}

	_, err = dialTest(t, DialConfig{Address: testenv.MariaDBAddr, User: user, Password: "x" + password, Database: "test"})
	var me *mysql.MyError
	if !errors.As(err, &me) || me.Code != CodeAccessDenied {
		t.Fatalf("wrong password: err = %v, want ERR 1045", err)
	}
	if strings.Contains(err.Error(), password) {
		t.Fatalf("error carries the password: %v", err)
	}
	// TLS is disabled on this MariaDB: require must fail before any secret is sent.
	if _, err := dialTest(t, DialConfig{Address: testenv.MariaDBAddr, User: user, Password: password, TLS: TLSConfig{Mode: "require"}}); err == nil {
		t.Error("require succeeded against a server without TLS")
	}
}

func TestDialCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Dial(ctx, DialConfig{Address: "127.0.0.1:1", User: "u", Password: "p"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}
