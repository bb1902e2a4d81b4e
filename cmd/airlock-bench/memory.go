package main

import (
	"context"
	"fmt"
	"math"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// MemPhase is one idle-connection measurement of one process: its resident
// memory before and after opening idle client sessions.
type MemPhase struct {
	Process   string // what was measured
	Path      string // the clients' way to PostgreSQL
	Requested int
	Opened    int
	FirstErr  string // the first failure to open a session, if any
	BeforeKiB int64
	AfterKiB  int64
	PeakKiB   int64   // VmHWM after opening
	GorBefore float64 // goroutines (Airlock only; NaN otherwise)
	GorAfter  float64
	OpenSecs  float64 // time to open them all
}

// PerConnKiB is the resident memory each idle session added.
func (p *MemPhase) PerConnKiB() float64 {
	if p == nil || p.Opened == 0 {
		return math.NaN()
	}
	return float64(p.AfterKiB-p.BeforeKiB) / float64(p.Opened)
}

// GorPerConn is the goroutines each idle session added.
func (p *MemPhase) GorPerConn() float64 {
	if p == nil || p.Opened == 0 {
		return math.NaN()
	}
	return (p.GorAfter - p.GorBefore) / float64(p.Opened)
}

// MemoryResult is the idle-connection measurement.
type MemoryResult struct {
	MaxConnections int
	// Headroom is how many more sessions PostgreSQL could take when the
	// measurement began, after leaving Margin free for other users.
	Headroom int
	Margin   int
	Direct   *MemPhase // Airlock dialling PostgreSQL: one server session per client
	Pooled   *MemPhase // Airlock dialling pgbouncer in transaction mode
	Bouncer  *MemPhase // pgbouncer alone, as the reference
	Err      string
}

// Extrapolated1000MiB extends the direct measurement to 1,000 clients.
func (m *MemoryResult) Extrapolated1000MiB() float64 {
	if m == nil || m.Direct == nil || m.Direct.Opened == 0 {
		return math.NaN()
	}
	return (float64(m.Direct.BeforeKiB) + 1000*m.Direct.PerConnKiB()) / 1024
}

// raiseNoFile lifts the harness's open-file limit to its hard limit: 1,000
// idle clients need 1,000 descriptors here and twice that in the gateway,
// which inherits the limit. Setting it explicitly also makes Go pass the
// raised limit to child processes.
func raiseNoFile() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("get RLIMIT_NOFILE: %w", err)
	}
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("raise RLIMIT_NOFILE: %w", err)
	}
	return rl.Cur, nil
}

// pgHeadroom returns how many more client sessions the server can take
// (beyond the superuser reserve and the sessions already open), minus margin.
func (b *bench) pgHeadroom(ctx context.Context, margin int) (maxConns, headroom int, err error) {
	c, err := pgx.Connect(ctx, b.pgURL("postgres"))
	if err != nil {
		return 0, 0, fmt.Errorf("connect for max_connections: %w", err)
	}
	defer c.Close(ctx)
	var reserved, open int
	err = c.QueryRow(ctx, `SELECT current_setting('max_connections')::int,
		current_setting('superuser_reserved_connections')::int,
		(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int`).Scan(&maxConns, &reserved, &open)
	if err != nil {
		return 0, 0, fmt.Errorf("read max_connections: %w", err)
	}
	return maxConns, max(0, maxConns-reserved-open-margin), nil
}

// upstreamPasswordEnv carries the password of Airlock's upstream, when it
// needs one (pgbouncer), into the process: never into its configuration file.
const upstreamPasswordEnv = "AIRLOCK_BENCH_UPSTREAM_PASSWORD"

// measureMemory opens idle sessions through fresh processes: pgbouncer alone,
// Airlock straight to PostgreSQL (as many sessions as the server allows) and
// Airlock through pgbouncer in transaction mode (the full count, since idle
// clients then hold no server session).
func (b *bench) measureMemory(ctx context.Context, full airlockConfig) *MemoryResult {
	res := &MemoryResult{Margin: b.opt.pgMargin}
	n := b.opt.idle
	pgb, err := b.startPgbouncer(ctx, "pgbouncer-mem", n+100)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer b.sv.remove(pgb.svc)
	pooledDB := b.opt.db + "_tx"

	b.log.Info("memory: idle clients on pgbouncer", "clients", n)
	bt := *pgb
	bt.db = pooledDB
	res.Bouncer = b.idlePhase(ctx, &bt, n, "pgbouncer (transaction pooling)", "client → pgbouncer → PostgreSQL")

	if res.MaxConnections, res.Headroom, err = b.pgHeadroom(ctx, b.opt.pgMargin); err != nil {
		res.Err = err.Error()
		return res
	}
	if nd := min(n, res.Headroom); nd > 0 {
		b.log.Info("memory: idle clients on Airlock dialling PostgreSQL", "clients", nd)
		cfg := full
		cfg.Mode = "full (memory, direct upstream)"
		if at, err := b.startAirlock(ctx, "airlock-mem-direct", cfg); err != nil {
			res.Err = err.Error()
		} else {
			res.Direct = b.idlePhase(ctx, at, nd, "airlock-full", "client → Airlock → PostgreSQL")
			b.sv.remove(at.svc)
		}
	}

	b.log.Info("memory: idle clients on Airlock dialling pgbouncer", "clients", n)
	cfg := full
	cfg.Mode = "full (memory, pooled upstream)"
	cfg.Upstream = fmt.Sprintf("127.0.0.1:%d", pgb.port)
	cfg.Database = pooledDB
	// pgbouncer asks its clients for a password (md5), Airlock included.
	cfg.Env = append(append([]string(nil), cfg.Env...), upstreamPasswordEnv+"="+pgb.password)
	if at, err := b.startAirlock(ctx, "airlock-mem-pooled", cfg); err != nil {
		res.Err = err.Error()
	} else {
		res.Pooled = b.idlePhase(ctx, at, n, "airlock-full", "client → Airlock → pgbouncer (transaction pooling) → PostgreSQL")
		b.sv.remove(at.svc)
	}
	return res
}

// idlePhase opens n idle sessions to t, measures t's process, closes them.
func (b *bench) idlePhase(ctx context.Context, t *target, n int, process, path string) *MemPhase {
	p := &MemPhase{Process: process, Path: path, Requested: n, GorBefore: math.NaN(), GorAfter: math.NaN()}
	settle(ctx, time.Second)
	p.BeforeKiB, _, _ = rssKiB(t.pid())
	p.GorBefore = goroutines(t.admin)

	cfg, err := t.connConfig()
	if err != nil {
		p.FirstErr = err.Error()
		return p
	}
	conns := make([]*pgconn.PgConn, 0, n)
	var mu sync.Mutex
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			c, err := pgconn.ConnectConfig(cctx, cfg)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if p.FirstErr == "" {
					p.FirstErr = err.Error()
				}
				return
			}
			conns = append(conns, c)
		}()
	}
	wg.Wait()
	p.OpenSecs = time.Since(start).Seconds()
	p.Opened = len(conns)
	settle(ctx, 2*time.Second)
	p.AfterKiB, p.PeakKiB, _ = rssKiB(t.pid())
	p.GorAfter = goroutines(t.admin)

	var cw sync.WaitGroup
	for _, c := range conns {
		cw.Add(1)
		go func() {
			defer cw.Done()
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = c.Close(cctx)
		}()
	}
	cw.Wait()
	return p
}

func settle(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
