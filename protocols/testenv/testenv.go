// Package testenv gives tests the real servers of this machine: PostgreSQL,
// MariaDB and Redis on 127.0.0.1. When a server is unreachable a test skips,
// except under CI=true, where it fails: CI never passes by skipping.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Addresses of the local servers, overridable for other machines.
var (
	PostgresAddr = envOr("AIRLOCK_TEST_POSTGRES", "127.0.0.1:5432")
	MariaDBAddr  = envOr("AIRLOCK_TEST_MARIADB", "127.0.0.1:3306")
	RedisAddr    = envOr("AIRLOCK_TEST_REDIS", "127.0.0.1:6379")
	// PostgresSocketDir is the directory of the same PostgreSQL's
	// Unix-domain socket (.s.PGSQL.5432), as libpq's host takes it.
	PostgresSocketDir = envOr("AIRLOCK_TEST_POSTGRES_SOCKET_DIR", "/var/run/postgresql")
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// InCI reports whether the tests run under CI=true.
func InCI() bool { return os.Getenv("CI") == "true" }

// Need dials addr and skips (or, in CI, fails) the test if nothing answers.
func Need(t testing.TB, what, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		if InCI() {
			t.Fatalf("%s at %s is unreachable under CI=true: %v", what, addr, err)
		}
		t.Skipf("%s at %s is unreachable: %v", what, addr, err)
	}
	c.Close()
}

// NeedPostgresSocket makes sure PostgreSQL answers on its Unix-domain
// socket and returns the socket directory; it skips (or, in CI, fails) the
// test otherwise.
func NeedPostgresSocket(t testing.TB) string {
	t.Helper()
	sock := filepath.Join(PostgresSocketDir, ".s.PGSQL.5432")
	c, err := net.DialTimeout("unix", sock, 3*time.Second)
	if err != nil {
		if InCI() {
			t.Fatalf("PostgreSQL socket %s is unreachable under CI=true: %v", sock, err)
		}
		t.Skipf("PostgreSQL socket %s is unreachable: %v", sock, err)
	}
	c.Close()
	return PostgresSocketDir
}

// Unique returns a name with prefix and a random suffix, safe as an SQL
// identifier or a Redis key.
func Unique(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

// PostgresURL returns a URL for database db on the local PostgreSQL, after
// making sure the server answers.
func PostgresURL(t testing.TB, db string) string {
	t.Helper()
	Need(t, "PostgreSQL", PostgresAddr)
	return "postgres://postgres@" + PostgresAddr + "/" + db + "?sslmode=disable"
}

// PostgresDB creates a fresh database on the local PostgreSQL, drops it when
// the test ends, and returns its name.
func PostgresDB(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, PostgresURL(t, "postgres"))
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer admin.Close(ctx)
	name := Unique("airlock_test")
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, PostgresURL(t, "postgres"))
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return name
}
