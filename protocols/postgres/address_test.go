package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols/testenv"
)

func TestSplitUpstreamAddress(t *testing.T) {
	for _, tc := range []struct {
		in, host, port, err string
	}{
		{in: "127.0.0.1:5432", host: "127.0.0.1", port: "5432"},
		{in: "[::1]:6432", host: "::1", port: "6432"},
		{in: "db.internal:5433", host: "db.internal", port: "5433"},
		{in: "/var/run/postgresql", host: "/var/run/postgresql", port: "5432"},
		{in: "/var/run/postgresql/", host: "/var/run/postgresql", port: "5432"},
		{in: "/tmp/.s.PGSQL.5433", host: "/tmp", port: "5433"},
		{in: "/.s.PGSQL.6000", host: "/", port: "6000"},
		{in: "db.internal", err: "missing port"},
		{in: ":5432", err: "missing host"},
		{in: "db:http", err: "invalid port"},
		{in: "db:0", err: "invalid port"},
		{in: "db:070", err: "invalid port"},
		{in: "/tmp/.s.PGSQL.", err: "invalid port"},
		{in: "/tmp/.s.PGSQL.99999", err: "invalid port"},
	} {
		host, port, err := SplitUpstreamAddress(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: got %q %q %v, want error with %q", tc.in, host, port, err, tc.err)
			}
			continue
		}
		if err != nil || host != tc.host || port != tc.port {
			t.Errorf("%q: got %q %q %v, want %q %q", tc.in, host, port, err, tc.host, tc.port)
		}
	}
}

// TestUnixSocketUpstream relays a session to PostgreSQL's Unix-domain
// socket, in the protocol-aware and in the relay mode, and cancels a
// running statement through it: the cancel must reach the server over the
// socket too.
func TestUnixSocketUpstream(t *testing.T) {
	dir := testenv.NeedPostgresSocket(t)
	for _, relay := range []bool{false, true} {
		name := "inspect"
		if relay {
			name = "relay"
		}
		t.Run(name, func(t *testing.T) {
			h := startHarness(t, func(o *Options) {
				o.Relay = relay
				up := upstreamOf(o.Connections["main"])
				up.Address, up.TLS.Mode = dir, "prefer"
			})
			c := connect(t, h.url("alice", "alice-token", "main", ""))
			ctx := context.Background()
			var addr *string
			if err := c.QueryRow(ctx, "SELECT inet_client_addr()::text").Scan(&addr); err != nil {
				t.Fatal(err)
			}
			if addr != nil {
				t.Fatalf("upstream session came over TCP from %s, want the Unix socket", *addr)
			}
			qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			start := time.Now()
			go func() {
				time.Sleep(500 * time.Millisecond)
				if err := c.PgConn().CancelRequest(ctx); err != nil {
					t.Errorf("cancel request: %v", err)
				}
			}()
			_, err := c.Exec(qctx, "SELECT pg_sleep(20)")
			if err == nil || !strings.Contains(err.Error(), "canceling statement due to user request") {
				t.Fatalf("pg_sleep ended with %v after %v, want a cancel", err, time.Since(start))
			}
			var one int
			if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
				t.Fatalf("session after cancel: %d %v", one, err)
			}
		})
	}
}
