package mysql

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/airlock-gw/airlock/protocols/mysql/wire"
	"github.com/airlock-gw/airlock/protocols/testenv"
)

// queryValue runs a query on a raw upstream session and returns the first
// value of its only row ("NULL" for NULL).
func queryValue(t *testing.T, up *wire.Upstream, text string) string {
	t.Helper()
	if _, err := wire.WritePacket(up.Conn, 0, wire.AppendQuery(nil, up.Capabilities, []byte(text))); err != nil {
		t.Fatal(err)
	}
	read := func() []byte {
		p, err := wire.ReadPacket(up.Conn, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if wire.IsERR(p.Payload) {
			me, _ := wire.ParseERR(p.Payload)
			t.Fatalf("%s: %v", text, me)
		}
		return p.Payload
	}
	n, err := wire.ParseColumnCount(read())
	if err != nil {
		t.Fatalf("%s: %v", text, err)
	}
	for range n {
		read()
	}
	value := ""
	for first := true; ; first = false {
		p := read()
		if end, _, _ := wire.ResultEnd(p, up.Capabilities); end {
			return value
		}
		switch {
		case first && p[0] == 0xfb:
			value = "NULL"
		case first:
			value = string(p[1 : 1+int(p[0])])
		}
	}
}

// TestResetUpstream: the reset clears what a client left in a MariaDB
// session and sets the connection's database again, on the same thread.
func TestResetUpstream(t *testing.T) {
	testenv.Need(t, "MariaDB", testenv.MariaDBAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	caps := uint32(mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_TRANSACTIONS | mysql.CLIENT_DEPRECATE_EOF |
		mysql.CLIENT_MULTI_RESULTS | mysql.CLIENT_SESSION_TRACK)
	up, err := wire.Dial(ctx, wire.DialConfig{Address: testenv.MariaDBAddr, User: "root", Database: "mysql",
		TLS: wire.TLSConfig{Mode: "disable"}, Capabilities: caps})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Conn.Close()
	lock := testenv.Unique("airlock_reset")
	thread := queryValue(t, up, "SELECT CONNECTION_ID()")
	queryValue(t, up, "SELECT @kept := 1")
	queryValue(t, up, "SELECT GET_LOCK('"+lock+"', 0)")
	for _, cmd := range [][]byte{wire.AppendQuery(nil, up.Capabilities, []byte("SET autocommit = 0")),
		append([]byte{mysql.COM_INIT_DB}, "information_schema"...)} {
		if _, err := wire.WritePacket(up.Conn, 0, cmd); err != nil {
			t.Fatal(err)
		}
		if p, err := wire.ReadPacket(up.Conn, 1<<16); err != nil || p.Payload[0] != mysql.OK_HEADER {
			t.Fatalf("%q: %q %v", cmd, p.Payload, err)
		}
	}
	if err := resetUpstream(up, "mysql", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if up.Status&mysql.SERVER_STATUS_AUTOCOMMIT == 0 {
		t.Errorf("status 0x%04x after the reset", up.Status)
	}
	for q, want := range map[string]string{
		"SELECT CONNECTION_ID()":              thread,
		"SELECT @kept":                        "NULL",
		"SELECT DATABASE()":                   "mysql",
		"SELECT @@autocommit":                 "1",
		"SELECT IS_USED_LOCK('" + lock + "')": "NULL",
	} {
		if got := queryValue(t, up, q); got != want {
			t.Errorf("%s = %s, want %s", q, got, want)
		}
	}
}

// TestResetRefused: a server that does not know COM_RESET_CONNECTION
// (error 1047) is told apart from a reset that failed otherwise.
func TestResetRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		code    uint16
		refused bool
	}{
		{"unknown command", mysql.ER_UNKNOWN_COM_ERROR, true},
		{"killed", 1927, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			go func() {
				defer server.Close()
				// The peer answers the reset with tc.code and the
				// COM_INIT_DB after it with OK, as a server would.
				for range 2 {
					if _, err := wire.ReadPacket(server, 1<<16); err != nil {
						return
					}
				}
				out, _ := wire.AppendPacket(nil, 1, wire.AppendERR(nil, mysql.NewError(tc.code, "no")))
				out, _ = wire.AppendPacket(out, 1, wire.AppendOK(nil, &wire.OK{Status: mysql.SERVER_STATUS_AUTOCOMMIT}, mysql.CLIENT_PROTOCOL_41))
				_, _ = server.Write(out)
			}()
			err := resetUpstream(&wire.Upstream{Conn: client, Capabilities: mysql.CLIENT_PROTOCOL_41}, "db", 5*time.Second)
			if err == nil || errors.Is(err, errResetRefused) != tc.refused || errors.Is(err, errNotReusable) == tc.refused {
				t.Fatalf("reset error %v, want refused=%v", err, tc.refused)
			}
		})
	}
}
