package main

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/airlock-gw/airlock/protocols/testenv"
)

// soakKind picks what command i of a worker is: mostly reads, a fifth
// writes, a tenth refused by policy, and for every third worker of the SQL
// engines a held DELETE now and then, which the reviewer decides.
type soakKind int

const (
	soakRead soakKind = iota
	soakWrite
	soakRefused
	soakHeld
)

func kindOf(worker, i int, holds bool) soakKind {
	switch {
	case holds && worker%3 == 0 && i%20 == 19:
		return soakHeld
	case i%10 == 3:
		return soakRefused
	case i%5 == 1:
		return soakWrite
	}
	return soakRead
}

// opTimeout bounds one command, held ones included (the reviewer answers
// within a second or so).
const opTimeout = time.Minute

// heldOutcome tallies a held command's end: run once approved, or refused
// with the reviewer's denial.
func (s *soak) heldOutcome(engine string, err error) {
	s.held.Add(1)
	switch {
	case err == nil:
		s.approved.Add(1)
	case strings.Contains(err.Error(), "denied"):
		s.denied.Add(1)
	default:
		s.fail(engine, "held DELETE", err)
	}
}

// refusal tallies a command policy must refuse.
func (s *soak) refusal(engine string, err error) {
	if err == nil {
		s.fail(engine, "refusal", errors.New("the command ran"))
		return
	}
	s.refused.Add(1)
}

// done tallies a read or write that must succeed.
func (s *soak) done(engine string, k soakKind, err error) {
	if err != nil {
		s.fail(engine, fmt.Sprint("command kind ", k), err)
		return
	}
	if k == soakWrite {
		s.writes.Add(1)
	} else {
		s.reads.Add(1)
	}
}

type pgSoak struct {
	conn   *pgx.Conn
	worker int
}

func (c *pgSoak) step(_ context.Context, s *soak, i int) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var err error
	k := kindOf(c.worker, i, true)
	switch k {
	case soakHeld:
		_, err = c.conn.Exec(ctx, "DELETE FROM soak WHERE id = -1")
		s.heldOutcome("postgres", err)
		return
	case soakRefused:
		s.timed("postgres", func() { _, err = c.conn.Exec(ctx, "SELECT pg_read_file('/etc/hostname')") })
		s.refusal("postgres", err)
		return
	case soakWrite:
		s.timed("postgres", func() {
			_, err = c.conn.Exec(ctx, "INSERT INTO soak (worker, note) VALUES ($1, $2)", c.worker, "soak")
		})
	default:
		var n int
		s.timed("postgres", func() {
			err = c.conn.QueryRow(ctx, "SELECT count(*) FROM soak WHERE worker = $1", c.worker).Scan(&n)
		})
	}
	s.done("postgres", k, err)
}

func (c *pgSoak) close() { _ = c.conn.Close(context.Background()) }

type mySoak struct {
	conn   driver.Conn
	worker int
}

// exec runs query on the raw driver connection and reads its rows.
func (c *mySoak) exec(ctx context.Context, query string) error {
	q, ok := c.conn.(driver.QueryerContext)
	if !ok {
		return errors.New("the driver connection cannot query")
	}
	rows, err := q.QueryContext(ctx, query, nil)
	if err != nil {
		return err
	}
	dest := make([]driver.Value, len(rows.Columns()))
	for {
		if err := rows.Next(dest); err != nil {
			rows.Close()
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func (c *mySoak) step(_ context.Context, s *soak, i int) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var err error
	k := kindOf(c.worker, i, true)
	switch k {
	case soakHeld:
		err = c.exec(ctx, "DELETE FROM soak WHERE id = -1")
		s.heldOutcome("mysql", err)
		return
	case soakRefused:
		s.timed("mysql", func() { err = c.exec(ctx, "SELECT LOAD_FILE('/etc/hostname')") })
		s.refusal("mysql", err)
		return
	case soakWrite:
		s.timed("mysql", func() {
			err = c.exec(ctx, fmt.Sprintf("INSERT INTO soak (worker, note) VALUES (%d, 'soak')", c.worker))
		})
	default:
		s.timed("mysql", func() { err = c.exec(ctx, fmt.Sprintf("SELECT count(*) FROM soak WHERE worker = %d", c.worker)) })
	}
	s.done("mysql", k, err)
}

func (c *mySoak) close() { _ = c.conn.Close() }

type rdSoak struct {
	client *redis.Client
	conn   *redis.Conn
	idle   bool
	key    string
}

func (c *rdSoak) step(_ context.Context, s *soak, i int) {
	if c.idle {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var err error
	k := kindOf(0, i, false)
	switch k {
	case soakRefused:
		s.timed("redis", func() { err = c.conn.ConfigGet(ctx, "maxmemory").Err() })
		s.refusal("redis", err)
		return
	case soakWrite:
		s.timed("redis", func() { err = c.conn.Set(ctx, c.key, i, 0).Err() })
	default:
		s.timed("redis", func() {
			if err = c.conn.Get(ctx, c.key).Err(); errors.Is(err, redis.Nil) {
				err = nil
			}
		})
	}
	s.done("redis", k, err)
}

func (c *rdSoak) close() {
	_ = c.conn.Close()
	_ = c.client.Close()
}

// agentSoak calls the agent query API on the Redis connection, one
// request (one session) at a time on a kept-alive HTTP connection.
type agentSoak struct {
	base   string
	client *http.Client
	key    string
}

func (c *agentSoak) step(_ context.Context, s *soak, i int) {
	k := kindOf(0, i, false)
	command, want := []string{"GET", c.key}, http.StatusOK
	switch k {
	case soakRefused:
		command, want = []string{"CONFIG", "GET", "maxmemory"}, http.StatusForbidden
	case soakWrite:
		command = []string{"SET", c.key, fmt.Sprint(i)}
	}
	var status int
	var err error
	s.timed("agent", func() { status, err = c.query(command) })
	if err == nil && status != want {
		err = fmt.Errorf("status %d, want %d", status, want)
	}
	if k == soakRefused {
		if err != nil {
			s.fail("agent", "refusal", err)
		} else {
			s.refused.Add(1)
		}
		return
	}
	s.done("agent", k, err)
}

func (c *agentSoak) query(command []string) (int, error) {
	body, _ := json.Marshal(map[string]any{"command": command})
	req, err := http.NewRequest("POST", c.base+"/v1/connections/rd/query", strings.NewReader(string(body)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+agentToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func (c *agentSoak) close() { c.client.CloseIdleConnections() }

// createSoakTables creates the table soak in both databases.
func createSoakTables(t *testing.T, pgDB, myDB string) {
	t.Helper()
	c := pgxConnect(t, testenv.PostgresURL(t, pgDB))
	if _, err := c.Exec(context.Background(), "CREATE TABLE soak (id bigserial PRIMARY KEY, worker int, note text)"); err != nil {
		t.Fatal(err)
	}
	db := mariadbAdmin(t, myDB)
	if _, err := db.Exec("CREATE TABLE soak (id BIGINT AUTO_INCREMENT PRIMARY KEY, worker INT, note TEXT)"); err != nil {
		t.Fatal(err)
	}
}

// deleteRedisPrefix deletes the soak's keys from the Redis test database.
func deleteRedisPrefix(t *testing.T, prefix string) {
	c := directRedis(t, testDB)
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if len(keys) > 0 {
		if err := c.Del(ctx, keys...).Err(); err != nil {
			t.Errorf("delete soak keys: %v", err)
		}
	}
}
