package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const postgresAddr = "127.0.0.1:5432"

// TestRelays drives pgx through every mode against the real PostgreSQL:
// eight sessions at once, simple and prepared queries with their results
// checked, rows and parameters larger than the relays' 32 KiB buffers so
// reads and writes come in parts, and bytes that look like ReadyForQuery
// inside a row.
func TestRelays(t *testing.T) {
	if c, err := net.DialTimeout("tcp", postgresAddr, 2*time.Second); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL at %s unreachable: %v", postgresAddr, err)
		}
		t.Skipf("PostgreSQL at %s unreachable: %v", postgresAddr, err)
	} else {
		c.Close()
	}
	for mode, serve := range relays {
		for _, sslmode := range []string{"disable", "prefer"} {
			t.Run(mode+"/"+sslmode, func(t *testing.T) {
				if mode == "uring" {
					requireURing(t)
				}
				addr := startRelay(t, serve)
				var wg sync.WaitGroup
				errs := make(chan error, 8)
				for i := range 8 {
					wg.Go(func() {
						if err := exercise(addr, sslmode, i); err != nil {
							errs <- fmt.Errorf("session %d: %w", i, err)
						}
					})
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Error(err)
				}
			})
		}
	}
}

// requireURing skips when the kernel refuses io_uring, but under CI=true
// fails when io_uring_disabled says it should have worked.
func requireURing(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r, err := newRing(8, false)
	if err == nil {
		r.close()
		return
	}
	if !errors.Is(err, errUnsupported) {
		t.Fatal(err)
	}
	b, _ := os.ReadFile("/proc/sys/kernel/io_uring_disabled")
	if os.Getenv("CI") == "true" && strings.TrimSpace(string(b)) == "0" {
		t.Fatalf("io_uring refused though kernel.io_uring_disabled=0: %v", err)
	}
	t.Skipf("io_uring unavailable: %v", err)
}

func startRelay(t *testing.T, serve func(*net.TCPListener, string) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serve(ln.(*net.TCPListener), postgresAddr) }()
	t.Cleanup(func() {
		ln.Close()
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Errorf("relay ended with %v, want the closed listener's error", err)
		}
	})
	return ln.Addr().String()
}

// exercise is one session's work.
func exercise(addr, sslmode string, session int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@%s/test?sslmode=%s", addr, sslmode))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	for i := range 200 {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
			var got int
			if err := conn.QueryRow(ctx, "select $1::int + 1", mode, session*1000+i).Scan(&got); err != nil {
				return fmt.Errorf("query %d: %w", i, err)
			}
			if got != session*1000+i+1 {
				return fmt.Errorf("query %d: got %d, want %d", i, got, session*1000+i+1)
			}
		}
		if i%40 == 0 {
			if err := large(ctx, conn, i); err != nil {
				return err
			}
		}
	}
	return batch(ctx, conn)
}

// large checks a 70 KiB row full of 'Z', a 100 KiB parameter, and a bytea
// holding a ReadyForQuery message's bytes (raw in the prepared query's
// binary result).
func large(ctx context.Context, conn *pgx.Conn, i int) error {
	suffix := fmt.Sprint(i)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		var row string
		if err := conn.QueryRow(ctx, "select repeat('Z', 70000) || $1::text", mode, suffix).Scan(&row); err != nil {
			return fmt.Errorf("large row: %w", err)
		}
		if row != strings.Repeat("Z", 70000)+suffix {
			return fmt.Errorf("large row: got %d bytes, want %d", len(row), 70000+len(suffix))
		}
		var n int
		if err := conn.QueryRow(ctx, "select length($1::text)", mode, strings.Repeat("Z", 100000)).Scan(&n); err != nil {
			return fmt.Errorf("large parameter: %w", err)
		}
		if n != 100000 {
			return fmt.Errorf("large parameter: server saw %d bytes, want 100000", n)
		}
		fake := []byte{'Z', 0, 0, 0, 5, 'I'}
		var b []byte
		if err := conn.QueryRow(ctx, "select $1::bytea", mode, fake).Scan(&b); err != nil {
			return fmt.Errorf("bytea: %w", err)
		}
		if !bytes.Equal(b, fake) {
			return fmt.Errorf("bytea: got %x, want %x", b, fake)
		}
	}
	return nil
}

// batch sends three queries in one write.
func batch(ctx context.Context, conn *pgx.Conn) error {
	var b pgx.Batch
	for i := range 3 {
		b.Queue("select $1::int * 2", i)
	}
	res := conn.SendBatch(ctx, &b)
	for i := range 3 {
		var got int
		if err := res.QueryRow().Scan(&got); err != nil {
			return fmt.Errorf("batch %d: %w", i, err)
		}
		if got != i*2 {
			return fmt.Errorf("batch %d: got %d, want %d", i, got, i*2)
		}
	}
	return res.Close()
}

// TestMessageScanner feeds a stream cut at every position and checks that
// only real message headers are reported, never a 'Z' inside a body.
func TestMessageScanner(t *testing.T) {
	msg := func(typ byte, body []byte) []byte {
		m := []byte{typ, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(m[1:], uint32(4+len(body)))
		return append(m, body...)
	}
	var stream []byte
	stream = append(stream, msg('D', []byte{'Z', 0, 0, 0, 5, 'I'})...)
	stream = append(stream, msg('C', []byte("SELECT 1\x00"))...)
	stream = append(stream, msg('Z', []byte{'I'})...)
	for cut := range len(stream) + 1 {
		var s messageScanner
		var types []byte
		found := func(typ byte) { types = append(types, typ) }
		s.scan(stream[:cut], found)
		if cut < len(stream) && s.atBoundary() && cut != 0 && cut != 11 && cut != 25 {
			t.Errorf("cut %d: at a boundary mid-message", cut)
		}
		s.scan(stream[cut:], found)
		if string(types) != "DCZ" || !s.atBoundary() {
			t.Errorf("cut %d: types %q, boundary %v; want \"DCZ\", true", cut, types, s.atBoundary())
		}
	}
}
