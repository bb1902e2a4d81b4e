package approvals

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/session/sqldb"
)

// storeKind opens stores on one database: each call returns a new store
// (its own pool and, on PostgreSQL, its own LISTEN connection) on the same
// data, as a second replica would.
type storeKind struct {
	name string
	open func(t *testing.T) func(t *testing.T) *SQLStore
}

var storeKinds = []storeKind{
	{"sqlite", func(t *testing.T) func(t *testing.T) *SQLStore {
		path := filepath.Join(t.TempDir(), "airlock.db")
		return func(t *testing.T) *SQLStore {
			return openTestStore(t, sqldb.Config{Driver: "sqlite", DSN: protocols.Secret(path)})
		}
	}},
	{"postgres", func(t *testing.T) func(t *testing.T) *SQLStore {
		dsn := testenv.PostgresURL(t, testenv.PostgresDB(t))
		return func(t *testing.T) *SQLStore {
			return openTestStore(t, sqldb.Config{Driver: "postgres", DSN: protocols.Secret(dsn)})
		}
	}},
}

func openTestStore(t *testing.T, cfg sqldb.Config) *SQLStore {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sqldb.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := OpenStore(ctx, db, testLogger(t))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return st
}

// forEachStore runs fn once per store kind.
func forEachStore(t *testing.T, fn func(t *testing.T, open func(t *testing.T) *SQLStore)) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			fn(t, k.open(t))
		})
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("AIRLOCK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Microsecond)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type svcOpt func(*Options)

func withClock(c *clock) svcOpt       { return func(o *Options) { o.Now = c.Now } }
func withReplica(r string) svcOpt     { return func(o *Options) { o.Config.Replica = r } }
func withPoll(d time.Duration) svcOpt { return func(o *Options) { o.PollInterval = d } }
func withConns(c map[string]ConnectionConfig) svcOpt {
	return func(o *Options) { o.Connections = c }
}

// testConfig lets bob, carol and the dba group review.
func testConfig() Config {
	return Config{
		Reviewers: protocols.Principals{"bob", "carol", "group:dba"},
		AdminURL:  "https://airlock.example:19090",
		Replica:   "replica-a",
	}
}

func newService(t *testing.T, st Store, cfg Config, opts ...svcOpt) (*Service, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	o := Options{Config: cfg, Store: st, Log: testLogger(t), Registerer: reg, PollInterval: time.Hour, SweepInterval: time.Hour}
	for _, f := range opts {
		f(&o)
	}
	s, err := Open(context.Background(), o)
	if err != nil {
		t.Fatalf("open service: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, reg
}

var (
	alice = protocols.Identity{Name: "alice", Groups: []string{"dev"}, Method: "token"}
	bob   = protocols.Identity{Name: "bob", Groups: []string{"dev"}, Method: "token"}
	carol = protocols.Identity{Name: "carol", Groups: []string{"ops"}, Method: "oidc"}
	dave  = protocols.Identity{Name: "dave", Groups: []string{"dba"}, Method: "token"}
	eve   = protocols.Identity{Name: "eve", Groups: []string{"dev"}, Method: "token"}
)

// review builds the ReviewRequest an engine would pass for text.
func review(id protocols.Identity, conn, text string) protocols.ReviewRequest {
	cmd := &protocols.Command{Protocol: protocols.Postgres, Text: text, Kind: "query"}
	cls := &protocols.Classification{Risk: protocols.RiskHigh, Rules: []string{"schema.drop"}, Redacted: text}
	return protocols.ReviewRequest{
		Session:        protocols.SessionInfo{ID: "s-" + id.Name, Protocol: protocols.Postgres, Identity: id, Connection: conn, ClientAddr: "127.0.0.1:5555"},
		Command:        cmd,
		Classification: cls,
		Decision:       protocols.Decision{Action: protocols.Review, Risk: protocols.RiskHigh, Rules: cls.Rules},
	}
}

// held is a Review call running in the background, as an engine's session
// goroutine would make it.
type held struct {
	notes chan string
	done  chan struct{}
	dec   protocols.Decision
	err   error
}

func holdReview(ctx context.Context, s *Service, rr protocols.ReviewRequest) *held {
	h := &held{notes: make(chan string, 4), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		h.dec, h.err = s.Review(ctx, rr, func(m string) { h.notes <- m })
	}()
	return h
}

// id waits for the notice and returns the request id in it.
func (h *held) id(t *testing.T) string {
	t.Helper()
	select {
	case m := <-h.notes:
		var id string
		if _, err := fmtSscanf(m, "approval required: request %s", &id); err != nil {
			t.Fatalf("notice %q: %v", m, err)
		}
		return trimSemicolon(id)
	case <-h.done:
		t.Fatalf("review returned before notifying: %+v %v", h.dec, h.err)
	case <-time.After(20 * time.Second):
		t.Fatal("no notice within 20s")
	}
	return ""
}

// wait waits for the review to return.
func (h *held) wait(t *testing.T) (protocols.Decision, error) {
	t.Helper()
	select {
	case <-h.done:
		return h.dec, h.err
	case <-time.After(20 * time.Second):
		t.Fatal("review still held after 20s")
	}
	return protocols.Decision{}, nil
}

// running reports whether the review is still held.
func (h *held) running() bool {
	select {
	case <-h.done:
		return false
	default:
		return true
	}
}

func fmtSscanf(s, format string, args ...any) (int, error) { return fmt.Sscanf(s, format, args...) }

func trimSemicolon(s string) string { return strings.TrimSuffix(s, ";") }

// metricValue reads a counter or gauge.
func metricValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	t.Fatal("unsupported metric")
	return 0
}

// slogTo logs text to b (safe for concurrent use).
func slogTo(b *strings.Builder) *slog.Logger {
	return slog.New(slog.NewTextHandler(&lockedWriter{b: b}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type lockedWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
