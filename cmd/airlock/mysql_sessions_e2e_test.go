package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/airlock-gw/airlock/protocols/mysql/wire"
)

// How sessions end: a client gone by a reset, a quit or a close, an
// upstream out of connection slots. Each was found by the driver's own
// suite (mysql_driver_suite_test.go).

// TestMySQLClientResetKillsCommand: a client whose connection ends with a
// reset (a driver that closes with a result still arriving, or a
// cancelled context) has gone like one that closes cleanly: its running
// command is killed upstream, and the session ends as disconnected, not
// as a protocol violation.
func TestMySQLClientResetKillsCommand(t *testing.T) {
	m := startMySQL(t, "", "", "")
	// The command waits for a row lock the test holds: a server notices a
	// client gone during SLEEP() or GET_LOCK(), but not in InnoDB's lock
	// wait, which only a KILL ends early.
	m.exec(t, "CREATE TABLE locked (id INT PRIMARY KEY) ENGINE=InnoDB", "INSERT INTO locked VALUES (1)")
	admin := m.admin(t)
	ctx := context.Background()
	holder, err := admin.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if _, err := holder.ExecContext(ctx, "SELECT id FROM locked WHERE id = 1 FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	up := m.rawClient(t)
	if p, err := roundTrip(t, up, 0, wire.AppendQuery(nil, up.Capabilities, []byte("SET SESSION innodb_lock_wait_timeout = 25"))); err != nil || errCode(p) != 0 {
		t.Fatalf("set the lock wait timeout: %v % x", err, p.Payload)
	}
	const marker = "airlock-reset-me"
	query := wire.AppendQuery(nil, up.Capabilities, []byte("SELECT id FROM locked WHERE id = 1 FOR UPDATE /* "+marker+" */"))
	if _, err := wire.WritePacket(up.Conn, 0, query); err != nil {
		t.Fatal(err)
	}
	running := func() bool {
		var n int
		_ = admin.QueryRow("SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE ? AND info NOT LIKE '%processlist%'", "%"+marker+"%").Scan(&n)
		return n > 0
	}
	if !pollUntil(10*time.Second, running) {
		t.Fatal("the query never ran upstream")
	}
	tcp, ok := up.Conn.(*net.TCPConn)
	if !ok {
		t.Fatalf("the raw client's connection is a %T", up.Conn)
	}
	_ = tcp.SetLinger(0) // Close sends a reset
	tcp.Close()
	if !pollUntil(10*time.Second, func() bool { return !running() }) {
		t.Fatal("the query of a client that reset its connection still runs upstream")
	}
	if !pollUntil(5*time.Second, func() bool { return strings.Contains(m.Logs(), `reason="client disconnected"`) }) ||
		strings.Contains(m.Logs(), `reason="protocol violation"`) {
		t.Fatalf("a reset connection did not end as a client gone:\n%s", m.Logs())
	}
}

// TestMySQLUpstreamOutOfSlots: an upstream out of connection slots is
// tried again for a moment, as the slots of sessions that just ended are
// freed, and one that stays full answers error 1040, the server's own,
// rather than "cannot connect".
func TestMySQLUpstreamOutOfSlots(t *testing.T) {
	// Each upstream serves its first login (Airlock's probe of its
	// version), then refuses the next ones.
	busy := startSlotsUpstream(t, 3)
	full := startSlotsUpstream(t, 1<<20)
	entry := func(name, addr string) string {
		return fmt.Sprintf(`  - name: %s
    protocol: mysql
    upstream: {address: %s, database: any, user: root, tls: {mode: disable}}
    allow: [dev]
`, name, addr)
	}
	cfg := baseConfig("postgres", "", "\n"+entry("busy", busy.addr)+entry("full", full.addr))
	cfg = strings.Replace(cfg, "listen:\n  postgres: 127.0.0.1:0\n", "listen:\n  postgres: 127.0.0.1:0\n  mysql: 127.0.0.1:0\n", 1)
	in := startAirlock(t, cfg)
	m := &mysqlInstance{instance: in, addr: in.addr("mysql")}
	ctx := context.Background()

	db := openDriver(t, m.driverConfig("dev", devToken, "busy"))
	if _, err := db.ExecContext(ctx, "DO 1"); err != nil {
		t.Fatalf("an upstream whose slots free up: %v", err)
	}
	if n := busy.refused.Load(); n != 3 {
		t.Fatalf("the upstream refused %d logins, want 3", n)
	}
	db = openDriver(t, m.driverConfig("dev", devToken, "full"))
	if _, err := db.ExecContext(ctx, "DO 1"); myCode(err) != 1040 || !strings.Contains(err.Error(), "Too many connections") {
		t.Fatalf("an upstream that stays full: %v, want error 1040", err)
	}
}

// slotsUpstream is a MySQL server whose first login is served and whose
// next `full` are refused with error 1040 in place of the greeting, as
// MariaDB and MySQL refuse a connection beyond max_connections. It answers
// every command with OK.
type slotsUpstream struct {
	addr    string
	logins  atomic.Int64
	refused atomic.Int64
}

func startSlotsUpstream(t *testing.T, full int64) *slotsUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &slotsUpstream{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := f.logins.Add(1)
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				if n > 1 && n <= 1+full {
					f.refused.Add(1)
					refusal := binary.LittleEndian.AppendUint16([]byte{mysql.ERR_HEADER}, mysql.ER_CON_COUNT_ERROR)
					_, _ = wire.WritePacket(c, 0, append(refusal, "Too many connections"...))
					return
				}
				f.serve(c)
			})
		}
	})
	return f
}

func (f *slotsUpstream) serve(c net.Conn) {
	caps := wire.RelayCapabilities | mysql.CLIENT_LONG_PASSWORD | mysql.CLIENT_CONNECT_WITH_DB | mysql.CLIENT_SECURE_CONNECTION |
		mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | mysql.CLIENT_CONNECT_ATTRS
	g := &wire.Greeting{ServerVersion: "8.0.36-fake", ConnectionID: 7, Nonce: bytes.Repeat([]byte{'n'}, 20),
		Capabilities: caps, Charset: 45, Status: mysql.SERVER_STATUS_AUTOCOMMIT, AuthPlugin: wire.PluginNative}
	if _, err := wire.WritePacket(c, 0, wire.AppendGreeting(nil, g)); err != nil {
		return
	}
	p, err := wire.ReadPacket(c, 1<<20)
	if err != nil {
		return
	}
	resp, err := wire.ParseHandshakeResponse(p.Payload)
	if err != nil {
		return
	}
	ok := wire.AppendOK(nil, &wire.OK{Status: mysql.SERVER_STATUS_AUTOCOMMIT}, resp.Capabilities&caps)
	for seq := uint8(2); ; seq = 1 {
		if _, err := wire.WritePacket(c, seq, ok); err != nil {
			return
		}
		p, err := wire.ReadPacket(c, 1<<24)
		if err != nil || len(p.Payload) == 0 || p.Payload[0] == mysql.COM_QUIT {
			return
		}
	}
}

// TestMySQLSessionEndIsNotAnUpstreamError: clients that leave by closing
// their connection end their sessions as disconnected; Airlock's closing
// of the upstream side is not counted as an upstream error.
func TestMySQLSessionEndIsNotAnUpstreamError(t *testing.T) {
	m := startMySQL(t, "", "", "")
	endSessions(t, m, 300, false)
	if n := strings.Count(m.Logs(), `reason="client disconnected"`); n != 300 {
		t.Errorf("%d of 300 sessions ended as disconnected", n)
	}
	if metrics := m.metrics(t); strings.Contains(metrics, `airlock_upstream_errors_total{connection="mysql"`) {
		t.Errorf("a session's end counted as an upstream error:\n%s", grepLines(metrics, "airlock_upstream_errors_total"))
	}
}

// TestMySQLQuitIsNotAnUpstreamError: a client's COM_QUIT, relayed, makes
// the upstream close its end; however soon that close is read, the
// session ends as the client's quit, not as an upstream lost.
func TestMySQLQuitIsNotAnUpstreamError(t *testing.T) {
	m := startMySQL(t, "", "", "")
	endSessions(t, m, 300, true)
	if n := strings.Count(m.Logs(), `reason="client quit"`); n != 300 {
		t.Errorf("%d of 300 sessions ended as the client's quit", n)
	}
	if metrics := m.metrics(t); strings.Contains(metrics, `airlock_upstream_errors_total{connection="mysql"`) {
		t.Errorf("a quit counted as an upstream error:\n%s", grepLines(metrics, "airlock_upstream_errors_total"))
	}
}

// endSessions opens n sessions, four at a time, and ends each at once,
// with COM_QUIT or by closing the connection, then waits until Airlock
// has logged their ends.
func endSessions(t *testing.T, m *mysqlInstance, n int, quit bool) {
	t.Helper()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range n / 4 {
				up := m.rawClient(t)
				if quit {
					if _, err := wire.WritePacket(up.Conn, 0, []byte{mysql.COM_QUIT}); err != nil {
						t.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, up.Conn) // until Airlock closes the session
				}
				up.Conn.Close()
			}
		})
	}
	wg.Wait()
	ended := func() int { return strings.Count(m.Logs(), `msg="session ended"`) }
	if !pollUntil(10*time.Second, func() bool { return ended() >= n }) {
		t.Fatalf("%d of %d sessions ended", ended(), n)
	}
}
