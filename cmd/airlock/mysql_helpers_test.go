package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/airlock-gw/airlock/protocols/testenv"
)

// mysqlListeningRE finds the MySQL listener's address in an instance's log.
var mysqlListeningRE = regexp.MustCompile(`msg=listening listener=mysql addr=([0-9.:]+)`)

// mysqlInstance is a running Airlock with a MySQL listener in front of a
// database of its own on the local MariaDB.
type mysqlInstance struct {
	*instance
	addr string // the MySQL listener
	db   string // the upstream database, dropped when the test ends
}

// mysqlConn is the connection entry "mysql" on database db; extra is
// added to the entry (masking, allow_database_change…).
func mysqlConn(db, extra string) string {
	return fmt.Sprintf(`  - name: mysql
    protocol: mysql
    upstream:
      address: %s
      database: %s
      user: root
      password: ""
      tls: {mode: prefer}
%s
    allow: [dev, agent]
`, testenv.MariaDBAddr, db, extra)
}

// startMySQL runs Airlock with a MySQL listener on a fresh database of the
// local MariaDB. extra is added at the top level of the configuration,
// upstream inside the MySQL connection's upstream block, conn to the
// connection entry. The configuration keeps the PostgreSQL listener the
// harness waits for.
func startMySQL(t *testing.T, extra, upstream, conn string) *mysqlInstance {
	t.Helper()
	db := mariadbDatabase(t)
	entry := mysqlConn(db, upstream)
	if conn != "" {
		entry = strings.Replace(entry, "    allow: [dev, agent]\n", conn+"\n    allow: [dev, agent]\n", 1)
	}
	cfg := baseConfig("postgres", extra, "\n"+entry)
	cfg = strings.Replace(cfg, "listen:\n  postgres: 127.0.0.1:0\n", "listen:\n  postgres: 127.0.0.1:0\n  mysql: 127.0.0.1:0\n", 1)
	in := startAirlock(t, cfg)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := mysqlListeningRE.FindStringSubmatch(in.Logs()); m != nil {
			return &mysqlInstance{instance: in, addr: m[1], db: db}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no MySQL listener\n%s", in.Logs())
	return nil
}

// mariadbAdmin connects to the local MariaDB directly as root.
func mariadbAdmin(t *testing.T, db string) *sql.DB {
	t.Helper()
	testenv.Need(t, "MariaDB", testenv.MariaDBAddr)
	cfg := driver.NewConfig()
	cfg.Net, cfg.Addr, cfg.User, cfg.DBName = "tcp", testenv.MariaDBAddr, "root", db
	cfg.MultiStatements = true
	conn, err := driver.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := sql.OpenDB(conn)
	t.Cleanup(func() { d.Close() })
	return d
}

// mariadbDatabase creates a database on the local MariaDB, dropped when
// the test ends.
func mariadbDatabase(t *testing.T) string {
	t.Helper()
	admin := mariadbAdmin(t, "")
	name := testenv.Unique("airlock_my")
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return name
}

// admin connects to the instance's upstream database directly.
func (m *mysqlInstance) admin(t *testing.T) *sql.DB { return mariadbAdmin(t, m.db) }

// exec runs statements on the upstream database directly.
func (m *mysqlInstance) exec(t *testing.T, stmts ...string) {
	t.Helper()
	a := m.admin(t)
	for _, s := range stmts {
		if _, err := a.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// driverConfig is a go-sql-driver configuration through Airlock.
func (m *mysqlInstance) driverConfig(user, token, conn string) *driver.Config {
	cfg := driver.NewConfig()
	cfg.Net, cfg.Addr, cfg.User, cfg.Passwd, cfg.DBName = "tcp", m.addr, user, token, conn
	cfg.Timeout = 10 * time.Second
	return cfg
}

// open opens a database/sql pool through Airlock with cfg.
func openDriver(t *testing.T, cfg *driver.Config) *sql.DB {
	t.Helper()
	conn, err := driver.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := sql.OpenDB(conn)
	t.Cleanup(func() { d.Close() })
	return d
}

// myCode returns a MySQL error's number, 0 for any other error.
func myCode(err error) uint16 {
	var me *driver.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// mariadbCLI runs the real mariadb client in batch mode through Airlock.
func (m *mysqlInstance) mariadbCLI(t *testing.T, user, token, conn, stdin string, args ...string) (string, error) {
	t.Helper()
	cli := needMariaDBClient(t)
	host, port, _ := net.SplitHostPort(m.addr)
	all := []string{"--no-defaults", "-h", host, "-P", port, "-u", user, "--connect-timeout=10", "--batch"}
	if token != "" {
		all = append(all, "-p"+token)
	}
	all = append(all, args...)
	if conn != "" {
		all = append(all, conn)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, all...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func needMariaDBClient(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"mariadb", "mysql"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if testenv.InCI() {
		t.Fatal("the mariadb client is not installed")
	}
	t.Skip("the mariadb client is not installed")
	return ""
}

// pollUntil polls cond until it holds or d passes.
func pollUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cond()
}

func init() {
	// A quiet driver: connection errors are what several tests provoke.
	_ = driver.SetLogger(driverLogger{})
}

type driverLogger struct{}

func (driverLogger) Print(...any) {}
