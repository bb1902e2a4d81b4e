package main

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/session/sqldb"
)

// readiness keeps what /readyz answers: whether a new session would be
// refused now, and why. A drain makes it unready at once; the store, the
// recording directory and each connection's upstream are checked every
// interval, in the background, so that /readyz answers from memory.
type readiness struct {
	s         *server
	interval  time.Duration
	timeout   time.Duration
	upstreams bool

	draining atomic.Bool
	up       *prometheus.GaugeVec // airlock_upstream_up{protocol,connection}

	mu      sync.Mutex
	checked bool // a first round is done
	store   check
	records check
	conns   map[string]check // by connection name
}

// check is one fact readiness reports.
type check struct {
	Name     string    `json:"name"`
	Protocol string    `json:"protocol,omitempty"`
	OK       bool      `json:"ok"`
	Problem  string    `json:"problem,omitempty"`
	Since    time.Time `json:"since"` // when it last changed
}

func newReadiness(s *server) *readiness {
	r := &readiness{
		s: s, interval: s.cfg.Readiness.Interval, timeout: s.cfg.Readiness.Timeout,
		upstreams: s.cfg.Readiness.ChecksUpstreams(), conns: map[string]check{},
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "airlock_upstream_up",
			Help: "Whether the connection's upstream accepted Airlock's login at the last readiness check (1) or not (0)."},
			[]string{"protocol", "connection"}),
	}
	s.reg.MustRegister(r.up)
	return r
}

// run checks until ctx ends.
func (r *readiness) run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		r.round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// round runs every check once, at the same time.
func (r *readiness) round(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var wg sync.WaitGroup
	var store, records error
	wg.Go(func() { store = r.checkStore(ctx) })
	wg.Go(func() { records = r.checkRecordings() })
	conns := r.s.gateway.Live().Connections()
	results := make([]error, len(conns))
	if r.upstreams {
		probers := map[protocols.Protocol]engine.Prober{}
		for _, e := range r.s.engines {
			if p, ok := e.(engine.Prober); ok {
				probers[e.Protocol()] = p
			}
		}
		for i, c := range conns {
			if p := probers[c.Protocol]; p != nil {
				wg.Go(func() { results[i] = probe(ctx, p, c) })
			}
		}
	}
	wg.Wait()
	if ctx.Err() != nil && errors.Is(context.Cause(ctx), context.Canceled) {
		return // shutting down: nothing to report
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	r.store = r.note(r.store, "store", "", store, now)
	r.records = r.note(r.records, "recordings", "", records, now)
	seen := map[string]bool{}
	for i, c := range conns {
		seen[c.Name] = true
		if !r.upstreams {
			continue
		}
		r.conns[c.Name] = r.note(r.conns[c.Name], c.Name, string(c.Protocol), results[i], now)
		v := 0.0
		if results[i] == nil {
			v = 1
		}
		r.up.WithLabelValues(string(c.Protocol), c.Name).Set(v)
	}
	for name, c := range r.conns {
		if !seen[name] { // removed by a reload
			delete(r.conns, name)
			r.up.DeleteLabelValues(c.Protocol, name)
		}
	}
	r.checked = true
}

// probe logs in to c's upstream; the error names the fault, never the
// address or credentials.
func probe(ctx context.Context, p engine.Prober, c *protocols.Connection) error {
	err := p.Probe(ctx, c)
	if err == nil {
		return nil
	}
	var f *engine.UpstreamFault
	if errors.As(err, &f) {
		return &probeError{msg: f.Message(), err: err}
	}
	return &probeError{msg: fmt.Sprintf("the upstream of connection %q could not be checked", c.Name), err: err}
}

// probeError is a failed check: what /readyz shows, and the cause, logged.
type probeError struct {
	msg string
	err error
}

func (e *probeError) Error() string { return e.msg }
func (e *probeError) Unwrap() error { return e.err }

// checkStore proves the shared store answers and, for SQLite, that a
// writer could take its lock now (approvals and the session index write).
func (r *readiness) checkStore(ctx context.Context) error {
	db := r.s.db
	if db == nil {
		return nil
	}
	if db.Dialect != sqldb.SQLite {
		if err := db.PingContext(ctx); err != nil {
			return &probeError{msg: "the store is unavailable", err: err}
		}
		return nil
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return &probeError{msg: "the store is unavailable", err: err}
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return &probeError{msg: "the store is unavailable (its SQLite file is locked or unwritable)", err: err}
	}
	if _, err := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); err != nil {
		// A connection left inside a transaction must not be reused.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		return &probeError{msg: "the store is unavailable", err: err}
	}
	return nil
}

// checkRecordings proves a new session's recording could be opened.
func (r *readiness) checkRecordings() error {
	if r.s.recorder == nil {
		return nil
	}
	err := r.s.recorder.Probe()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return &probeError{msg: "recordings cannot be written: the disk is full", err: err}
	case errors.Is(err, syscall.EROFS):
		return &probeError{msg: "recordings cannot be written: the file system is read-only", err: err}
	}
	return &probeError{msg: "recordings cannot be written", err: err}
}

// readyReport is /readyz's answer.
type readyReport struct {
	Ready       bool    `json:"ready"`
	Draining    bool    `json:"draining"`
	Checked     bool    `json:"checked"`
	Store       check   `json:"store"`
	Recordings  check   `json:"recordings"`
	Connections []check `json:"connections"`
}

// report says whether a new session would be admitted: not while draining
// or before the first checks, nor while the store or the recordings fail;
// a connection named in want (or every one, for "*") must have its
// upstream up too.
func (r *readiness) report(want []string) readyReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := readyReport{Draining: r.draining.Load(), Checked: r.checked, Store: r.store, Recordings: r.records}
	rep.Store.Name, rep.Recordings.Name = "store", "recordings"
	rep.Ready = !rep.Draining && rep.Checked && r.store.OK && r.records.OK
	all := slices.Contains(want, "*")
	for name, c := range r.conns {
		rep.Connections = append(rep.Connections, c)
		if (all || slices.Contains(want, name)) && !c.OK {
			rep.Ready = false
		}
	}
	for _, name := range want {
		if name != "*" && r.s.gateway.Connection(name) == nil {
			rep.Ready = false
			rep.Connections = append(rep.Connections, check{Name: name, Problem: "no such connection"})
		}
	}
	sort.Slice(rep.Connections, func(i, j int) bool { return rep.Connections[i].Name < rep.Connections[j].Name })
	return rep
}

// serveReady is GET /readyz: 200 when a new session would be admitted,
// else 503; ?connection=NAME (repeatable, or *) adds connections' upstreams
// to the question; ?format=json answers in JSON.
func (r *readiness) serveReady(w http.ResponseWriter, req *http.Request) {
	rep := r.report(req.URL.Query()["connection"])
	status := http.StatusOK
	if !rep.Ready {
		status = http.StatusServiceUnavailable
	}
	if req.URL.Query().Get("format") == "json" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(rep)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	var b strings.Builder
	switch {
	case rep.Ready:
		b.WriteString("ready\n")
	case rep.Draining:
		b.WriteString("not ready: draining (shutting down)\n")
	case !rep.Checked:
		b.WriteString("not ready: starting\n")
	default:
		b.WriteString("not ready\n")
	}
	line := func(what string, c check) {
		if c.OK {
			fmt.Fprintf(&b, "%s: ok\n", what)
		} else if c.Problem != "" {
			fmt.Fprintf(&b, "%s: %s\n", what, c.Problem)
		}
	}
	line("store", rep.Store)
	line("recordings", rep.Recordings)
	for _, c := range rep.Connections {
		what := "connection " + c.Name
		if c.Protocol != "" {
			what += " (" + c.Protocol + ")"
		}
		line(what, c)
	}
	_, _ = io.WriteString(w, b.String())
}

// note turns a check's outcome into the fact kept, logging each change:
// a failure with its cause (which may name an address, never a secret),
// a recovery plainly.
func (r *readiness) note(prev check, name, proto string, err error, now time.Time) check {
	c := check{Name: name, Protocol: proto, OK: err == nil, Since: prev.Since}
	if err != nil {
		c.Problem = err.Error()
	}
	if prev.Since.IsZero() || prev.OK != c.OK || prev.Problem != c.Problem {
		c.Since = now
		switch {
		case err != nil:
			r.s.log.Warn("readiness check failed", "check", name, "problem", c.Problem, "err", errors.Unwrap(err))
		case !prev.Since.IsZero():
			r.s.log.Info("readiness check recovered", "check", name)
		}
	}
	return c
}
