package postgres

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols/transport"
	"github.com/airlock-gw/airlock/session"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func withPool(n int) harnessOpt {
	return func(o *Options) { o.PoolMaxIdle = n }
}

// waitIdle waits until the engine's pool holds n sessions.
func waitIdle(t *testing.T, h *harness, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.engine.pool.idleCount() != n {
		if time.Now().After(deadline) {
			t.Fatalf("pool holds %d idle sessions, want %d", h.engine.pool.idleCount(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func backendPID(t *testing.T, c *pgx.Conn) int {
	t.Helper()
	var pid int
	if err := c.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	return pid
}

func closeConn(t *testing.T, c *pgx.Conn) {
	t.Helper()
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestUpstreamReuseResetsSession checks that a client that ends cleanly
// leaves its upstream session for the next client, and that nothing the
// first client set up is visible to the second.
func TestUpstreamReuseResetsSession(t *testing.T) {
	for _, relay := range []bool{false, true} {
		name := map[bool]string{false: "inspect", true: "relay"}[relay]
		t.Run(name, func(t *testing.T) {
			m := session.NewMetrics(prometheus.NewRegistry())
			h := startHarness(t, withPool(2), func(o *Options) { o.Relay = relay; o.Metrics = m })
			ctx := context.Background()
			a := connect(t, h.url("alice", "alice-token", "main", ""))
			pid := backendPID(t, a)
			for _, q := range []string{
				"CREATE TEMP TABLE leftover (x int)",
				"SET work_mem = '1234kB'",
				"SET application_name = 'first-client'",
				"PREPARE leftover_stmt AS SELECT 1",
				"LISTEN leftover_channel",
				"SELECT pg_advisory_lock(424242)",
				"DECLARE leftover_cursor CURSOR WITH HOLD FOR SELECT 1",
			} {
				if _, err := a.Exec(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			closeConn(t, a)
			waitIdle(t, h, 1)
			if got := metricValue(t, m.UpstreamIdle.WithLabelValues("postgres")); got != 1 {
				t.Errorf("idle gauge %v, want 1", got)
			}

			b := connect(t, h.url("alice", "alice-token", "main", ""))
			if got := backendPID(t, b); got != pid {
				t.Fatalf("second client got backend %d, want the reused %d", got, pid)
			}
			waitIdle(t, h, 0)
			dialed := metricValue(t, m.UpstreamSessions.WithLabelValues("postgres", "main", "dialed"))
			reused := metricValue(t, m.UpstreamSessions.WithLabelValues("postgres", "main", "reused"))
			idle := metricValue(t, m.UpstreamIdle.WithLabelValues("postgres"))
			if dialed != 1 || reused != 1 || idle != 0 {
				t.Errorf("metrics: dialed %v reused %v idle %v, want 1 1 0", dialed, reused, idle)
			}
			var temp, prepared, listening, locks, cursors int
			var workMem, app string
			err := b.QueryRow(ctx, `SELECT
				(SELECT count(*) FROM pg_class WHERE relname = 'leftover' AND relpersistence = 't'),
				(SELECT count(*) FROM pg_prepared_statements WHERE name = 'leftover_stmt'),
				(SELECT count(*) FROM pg_listening_channels()),
				(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()),
				(SELECT count(*) FROM pg_cursors WHERE name = 'leftover_cursor'),
				current_setting('work_mem'), current_setting('application_name')`).
				Scan(&temp, &prepared, &listening, &locks, &cursors, &workMem, &app)
			if err != nil {
				t.Fatal(err)
			}
			if temp != 0 || prepared != 0 || listening != 0 || locks != 0 || cursors != 0 || workMem == "1234kB" || app == "first-client" {
				t.Fatalf("state leaked into the next session: temp=%d prepared=%d listening=%d locks=%d cursors=%d work_mem=%s application_name=%s",
					temp, prepared, listening, locks, cursors, workMem, app)
			}
			// The session shown to the second client at startup carries
			// the reset value, not the first client's SET.
			if got := b.PgConn().ParameterStatus("application_name"); got == "first-client" {
				t.Fatalf("startup showed the previous client's application_name %q", got)
			}
		})
	}
}

// TestUpstreamNotReusedWhenDirty covers every way a session can end with
// its upstream not idle: inside a transaction, with a result streaming,
// with an unfinished extended query, and without Terminate. None may be
// kept.
func TestUpstreamNotReusedWhenDirty(t *testing.T) {
	h := startHarness(t, withPool(4))
	ctx := context.Background()
	url := h.url("alice", "alice-token", "main", "")

	// Inside a transaction.
	a := connect(t, url)
	if _, err := a.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	closeConn(t, a)

	// sendThenTerminate sends msg and says Terminate without waiting.
	sendThenTerminate := func(msg pgproto3.FrontendMessage) {
		pc, err := pgconn.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		pc.Frontend().Send(msg)
		if err := pc.Frontend().Flush(); err != nil {
			t.Fatal(err)
		}
		_ = pc.Close(ctx)
	}
	// A statement still running when the client says Terminate.
	sendThenTerminate(&pgproto3.Query{String: "SELECT pg_sleep(0.3)"})
	// An extended query with no Sync.
	sendThenTerminate(&pgproto3.Parse{Query: "SELECT 1"})

	// A client that hangs up without Terminate.
	pc, err := pgconn.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	_ = pc.Conn().Close()

	time.Sleep(700 * time.Millisecond)
	if n := h.engine.pool.idleCount(); n != 0 {
		t.Fatalf("%d dirty upstream sessions were kept", n)
	}
}

// TestUpstreamReuseKeysAndLiveness checks that sessions are reused only for
// the same startup parameters, that a session the server ended while idle
// is not handed out, and that the pool is bounded.
func TestUpstreamReuseKeysAndLiveness(t *testing.T) {
	h := startHarness(t, withPool(1))
	ctx := context.Background()
	urlX := h.url("alice", "alice-token", "main", "application_name=x")
	urlY := h.url("alice", "alice-token", "main", "application_name=y")

	a := connect(t, urlX)
	pidA := backendPID(t, a)
	closeConn(t, a)
	waitIdle(t, h, 1)

	b := connect(t, urlY)
	if backendPID(t, b) == pidA {
		t.Fatal("a session opened with application_name=x was given to a client asking for y")
	}
	if got := b.PgConn().ParameterStatus("application_name"); got != "y" {
		t.Fatalf("application_name %q, want y", got)
	}

	// The server ends the idle session; the next client must get a fresh,
	// working one.
	if _, err := b.Exec(ctx, "SELECT pg_terminate_backend($1)", pidA); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	c := connect(t, urlX)
	if pid := backendPID(t, c); pid == pidA {
		t.Fatal("a terminated upstream session was handed out")
	}
	waitIdle(t, h, 0)

	// Bounded in all: with room for one, the session idle longest makes
	// way, whatever its key.
	d := connect(t, urlX)
	pidB := backendPID(t, b)
	closeConn(t, b)
	waitIdle(t, h, 1)
	closeConn(t, c)
	closeConn(t, d)
	time.Sleep(300 * time.Millisecond)
	waitIdle(t, h, 1)
	e := connect(t, urlY)
	if backendPID(t, e) == pidB {
		t.Fatal("the session idle longest was kept over newer ones")
	}
}

func TestIdleAndOpen(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if transport.IdleAndOpen(a) {
		t.Fatal("a pipe without a socket reported open")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if !transport.IdleAndOpen(c) {
		t.Fatal("an idle open socket reported closed")
	}
	_, _ = s.Write([]byte("E"))
	time.Sleep(50 * time.Millisecond)
	if transport.IdleAndOpen(c) {
		t.Fatal("a socket with unread data reported idle")
	}
	var buf [1]byte
	_, _ = c.Read(buf[:])
	_ = s.Close()
	time.Sleep(50 * time.Millisecond)
	if transport.IdleAndOpen(c) {
		t.Fatal("a socket the peer closed reported open")
	}
}

func TestPoolKey(t *testing.T) {
	a := poolKey("main", map[string]string{"application_name": "x", "TimeZone": "UTC"})
	b := poolKey("main", map[string]string{"TimeZone": "UTC", "application_name": "x"})
	if a != b {
		t.Fatal("key depends on map order")
	}
	for _, other := range []string{
		poolKey("other", map[string]string{"application_name": "x", "TimeZone": "UTC"}),
		poolKey("main", map[string]string{"application_name": "x"}),
		poolKey("main", map[string]string{"application_name": "x", "TimeZone": "UTC0"}),
	} {
		if other == a {
			t.Fatalf("distinct sessions share key %q", a)
		}
	}
}

func metricValue(t testing.TB, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// TestUpstreamSlotsGivenBack fills a server's connection slots with idle
// reusable sessions of one set of startup parameters; a client with other
// parameters must still get a session, the idle ones being closed for it.
func TestUpstreamSlotsGivenBack(t *testing.T) {
	addr := privateCluster(t, "max_connections=4", "superuser_reserved_connections=0")
	h := startHarness(t, withPool(8), func(o *Options) {
		up := upstreamOf(o.Connections["main"])
		up.Address, up.Database = addr, "postgres"
	})
	ctx := context.Background()
	var cs []*pgx.Conn
	for range 4 {
		cs = append(cs, connect(t, h.url("alice", "alice-token", "main", "application_name=a")))
	}
	for _, c := range cs {
		closeConn(t, c)
	}
	waitIdle(t, h, 4)
	b := connect(t, h.url("alice", "alice-token", "main", "application_name=b"))
	var one int
	if err := b.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("client after the slots were given back: %d %v", one, err)
	}
	if n := h.engine.pool.idleCount(); n != 0 {
		t.Fatalf("%d idle sessions still kept", n)
	}
}

// idleCount is the number of sessions held.
func (p *upstreamPool) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.countLocked()
}
