package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect through Airlock: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func TestSimpleAndExtended(t *testing.T) {
	h := startHarness(t)
	c := connect(t, h.url("alice", "alice-token", "main", ""))
	ctx := context.Background()
	if _, err := c.Exec(ctx, "CREATE TABLE t (id int primary key, name text)"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "INSERT INTO t VALUES ($1, $2), ($3, $4)", 1, "one", 2, "two"); err != nil {
		t.Fatal(err)
	}
	var n int
	var name string
	if err := c.QueryRow(ctx, "SELECT count(*), max(name) FROM t").Scan(&n, &name); err != nil {
		t.Fatal(err)
	}
	if n != 2 || name != "two" {
		t.Fatalf("got %d %q", n, name)
	}
	// Simple protocol, several statements in one Query.
	rr := c.PgConn().Exec(ctx, "SELECT 1; SELECT name FROM t ORDER BY id")
	res, err := rr.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || string(res[1].Rows[1][0]) != "two" {
		t.Fatalf("unexpected results %+v", res)
	}
}

func TestDenyKeepsSessionUsable(t *testing.T) {
	h := startHarness(t)
	c := connect(t, h.url("alice", "alice-token", "main", ""))
	ctx := context.Background()
	// Extended protocol: refused at Parse.
	_, err := c.Exec(ctx, "SELECT /*deny*/ 1")
	if pgCode(err) != "42501" || !strings.Contains(err.Error(), "test.deny") {
		t.Fatalf("want 42501 naming the rule, got %v", err)
	}
	var one int
	if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("session not usable after refusal: %v", err)
	}
	// Simple protocol.
	_, err = c.PgConn().Exec(ctx, "SELECT /*deny*/ 1").ReadAll()
	if pgCode(err) != "42501" {
		t.Fatalf("want 42501, got %v", err)
	}
	// Review without an approver is refused: fail closed.
	_, err = c.PgConn().Exec(ctx, "SELECT /*review*/ 1").ReadAll()
	if pgCode(err) != "42501" || !strings.Contains(err.Error(), "approval") {
		t.Fatalf("want approval refusal, got %v", err)
	}
	if err := c.QueryRow(ctx, "SELECT 2").Scan(&one); err != nil || one != 2 {
		t.Fatalf("session not usable after refusal: %v", err)
	}
}

func TestDenyInPipeline(t *testing.T) {
	h := startHarness(t)
	c := connect(t, h.url("alice", "alice-token", "main", ""))
	ctx := context.Background()
	// One pipeline, a Sync after each statement: the refusal lands in its
	// own place and the statements around it run.
	p := c.PgConn().StartPipeline(ctx)
	for _, q := range []string{"SELECT 1", "SELECT /*deny*/ 2", "SELECT 3"} {
		p.SendQueryParams(q, nil, nil, nil, nil)
		p.SendPipelineSync()
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := 0; i < 6; i++ {
		r, err := p.GetResults()
		if err != nil {
			got = append(got, "err "+pgCode(err))
			continue
		}
		switch r := r.(type) {
		case *pgconn.ResultReader:
			res := r.Read()
			if res.Err != nil {
				got = append(got, "err "+pgCode(res.Err))
			} else {
				got = append(got, string(res.Rows[0][0]))
			}
		case *pgconn.PipelineSync:
			got = append(got, "sync")
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	want := "1 sync err 42501 sync 3 sync"
	if strings.Join(got, " ") != want {
		t.Fatalf("pipeline results %q, want %q", strings.Join(got, " "), want)
	}
	// The same refusal inside one Sync: the batch stops there, as it would
	// on any PostgreSQL error.
	b := &pgconn.Batch{}
	b.ExecParams("SELECT 1", nil, nil, nil, nil)
	b.ExecParams("SELECT /*deny*/ 2", nil, nil, nil, nil)
	b.ExecParams("SELECT 3", nil, nil, nil, nil)
	res, err := c.PgConn().ExecBatch(ctx, b).ReadAll()
	if pgCode(err) != "42501" || len(res) < 1 || string(res[0].Rows[0][0]) != "1" {
		t.Fatalf("batch: %v %+v", err, res)
	}
	var v int
	if err := c.QueryRow(ctx, "SELECT 4").Scan(&v); err != nil || v != 4 {
		t.Fatalf("after pipeline: %v", err)
	}
}

func TestDenyInTransactionAbortsIt(t *testing.T) {
	h := startHarness(t)
	c := connect(t, h.url("alice", "alice-token", "main", ""))
	ctx := context.Background()
	if _, err := c.Exec(ctx, "CREATE TABLE tx (v int)"); err != nil {
		t.Fatal(err)
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO tx VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT /*deny*/ 1"); pgCode(err) != "42501" {
		t.Fatalf("want refusal, got %v", err)
	}
	if err := tx.Commit(ctx); err == nil {
		// PostgreSQL turns COMMIT of a failed transaction into ROLLBACK;
		// pgx reports that as ErrTxCommitRollback.
		t.Log("commit reported no error")
	}
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM tx").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the refused statement's transaction must not commit: n=%d err=%v", n, err)
	}
}

func TestAuthFailures(t *testing.T) {
	h := startHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cases := []struct {
		name, url, code string
	}{
		{"wrong token", h.url("alice", "nope", "main", ""), "28P01"},
		{"unknown identity", h.url("mallory", "x", "main", ""), "28P01"},
		{"unknown connection", h.url("alice", "alice-token", "nosuch", ""), "28000"},
		{"forbidden connection", h.url("bob", "bob-token", "main", ""), "28000"},
		{"upstream down", h.url("alice", "alice-token", "down", ""), "08001"},
		{"replication", h.url("alice", "alice-token", "main", "replication=database"), "0A000"},
		{"role option", h.url("alice", "alice-token", "main", "options=-c%20role%3Dpostgres"), "42501"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := pgconn.Connect(ctx, tc.url)
			if err == nil {
				c.Close(ctx)
				t.Fatal("connection succeeded")
			}
			if got := pgCode(err); got != tc.code {
				t.Fatalf("code %q, want %q (%v)", got, tc.code, err)
			}
			if strings.Contains(err.Error(), "never-used-upstream-secret") {
				t.Fatal("error leaks the upstream password")
			}
		})
	}
	// The unknown and the forbidden connection read the same.
	_, e1 := pgconn.Connect(ctx, h.url("bob", "bob-token", "nosuch", ""))
	_, e2 := pgconn.Connect(ctx, h.url("bob", "bob-token", "main", ""))
	m1 := strings.ReplaceAll(e1.Error(), "nosuch", "X")
	m2 := strings.ReplaceAll(e2.Error(), "main", "X")
	if m1 != m2 {
		t.Fatalf("messages differ:\n%s\n%s", m1, m2)
	}
}

func TestTLS(t *testing.T) {
	h := startHarness(t)
	c := connect(t, strings.Replace(h.url("alice", "alice-token", "main", ""), "sslmode=disable", "sslmode=require", 1))
	if _, ok := c.PgConn().Conn().(interface{ ConnectionState() any }); ok {
		t.Log("tls")
	}
	var v string
	if err := c.QueryRow(context.Background(), "SELECT 'over tls'").Scan(&v); err != nil || v != "over tls" {
		t.Fatal(err)
	}
}

// TestTokensOnlyOverTLSFromAfar listens on a non-loopback address of this
// machine: a client arriving there must use TLS before it may send a token.
func TestTokensOnlyOverTLSFromAfar(t *testing.T) {
	var ip net.IP
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			ip = n.IP
			break
		}
	}
	if ip == nil {
		t.Skip("this machine has no non-loopback IPv4 address")
	}
	h := startHarnessOn(t, net.JoinHostPort(ip.String(), "0"))
	ctx := context.Background()
	_, err := pgconn.Connect(ctx, h.url("alice", "alice-token", "main", ""))
	if pgCode(err) != "28000" || !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("cleartext token from a non-local address: want 28000 asking for TLS, got %v", err)
	}
	c := connect(t, strings.Replace(h.url("alice", "alice-token", "main", ""), "sslmode=disable", "sslmode=require", 1))
	var v int
	if err := c.QueryRow(ctx, "SELECT 1").Scan(&v); err != nil {
		t.Fatal(err)
	}
}

// TestGSSENCRefused sends the GSSAPI encryption request libpq may open
// with: Airlock answers 'N' and the startup goes on in the same connection.
func TestGSSENCRefused(t *testing.T) {
	h := startHarness(t)
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30}); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil || b[0] != 'N' {
		t.Fatalf("GSSENCRequest answered %q, %v", b, err)
	}
	sm, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30,
		Parameters: map[string]string{"user": "alice", "database": "main"}}).Encode(nil)
	if _, err := c.Write(sm); err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, 9)
	if _, err := io.ReadFull(c, hdr); err != nil || hdr[0] != 'R' || hdr[8] != 3 {
		t.Fatalf("want AuthenticationCleartextPassword after the refusal, got %x %v", hdr, err)
	}
}

func TestActiveHookSpansTheSession(t *testing.T) {
	var mu sync.Mutex
	var started, ended int
	h := startHarness(t, func(o *Options) {
		o.Active = func() func() {
			mu.Lock()
			started++
			mu.Unlock()
			return func() {
				mu.Lock()
				ended++
				mu.Unlock()
			}
		}
	})
	counts := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return started, ended
	}
	c := connect(t, h.url("alice", "alice-token", "main", ""))
	var one int
	if err := c.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
	if s, e := counts(); s != 1 || e != 0 {
		t.Fatalf("during the session: %d started, %d ended; want 1, 0", s, e)
	}
	// A refused login is no session.
	if _, err := pgx.Connect(context.Background(), h.url("alice", "wrong-token", "main", "")); err == nil {
		t.Fatal("a wrong token connected")
	}
	c.Close(context.Background())
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, e := counts()
		if s == 1 && e == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the session: %d started, %d ended; want 1, 1", s, e)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
