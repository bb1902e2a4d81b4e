package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/airlock-gw/airlock/approvals"
	"github.com/airlock-gw/airlock/cmd/airlock/config"
	"github.com/airlock-gw/airlock/masking"
	"github.com/airlock-gw/airlock/masking/mysqlcodec"
	"github.com/airlock-gw/airlock/masking/pgcodec"
	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/agent"
	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/session"
	"github.com/airlock-gw/airlock/session/identity"
	"github.com/airlock-gw/airlock/session/identity/sso"
	"github.com/airlock-gw/airlock/session/index"
	"github.com/airlock-gw/airlock/session/recording"
	"github.com/airlock-gw/airlock/session/sqldb"
	"github.com/airlock-gw/airlock/sqlrisk"
)

func runServe(args []string, _ io.Reader, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "airlock.yaml", "configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	// Signals are caught from the start: SIGHUP's default would end the
	// process.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	engs := engines()
	cfg, err := config.Load(*path, engs...)
	if err != nil {
		fmt.Fprintf(stderr, "airlock: %s: invalid configuration:\n%v\n", *path, err)
		return 1
	}
	log := newLogger(cfg.Log, stderr)
	srv, err := newServer(cfg, engs, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	srv.path = *path
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go srv.signals(sigs, stop)
	if err := srv.run(ctx); err != nil {
		log.Error("stopped with an error", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// signals serves the process's signals: SIGTERM and SIGINT start a drain
// (stop), SIGHUP reloads the configuration.
func (s *server) signals(sigs <-chan os.Signal, stop context.CancelFunc) {
	draining := false
	for sig := range sigs {
		switch {
		case sig == syscall.SIGHUP:
			go s.reload("SIGHUP")
		case draining:
			s.log.Warn("already shutting down: sessions end as their commands finish, within shutdown.drain_timeout and cancel_timeout", "signal", sig.String())
		default:
			draining = true
			s.log.Info("shutting down: draining sessions", "signal", sig.String(),
				"drain_timeout", s.cfg.Shutdown.DrainTimeout, "cancel_timeout", s.cfg.Shutdown.CancelTimeout)
			stop()
		}
	}
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// server is one Airlock process: its listeners and what they share.
type server struct {
	cfg      *config.Config
	log      *slog.Logger
	reg      *prometheus.Registry
	metrics  *session.Metrics
	auth     *liveAuth
	engines  []engine.Engine
	gateway  *session.Gateway
	sessOpts session.Options // the gateway's, for the agent frontend's own
	tls      *tls.Config
	db       *sqldb.DB
	store    *approvals.SQLStore
	approver *approvals.Service
	index    *index.Store
	recorder *recording.Factory
	sso      *sso.Service // nil without an sso block

	ready   *readiness
	closers []func() error

	// path is the configuration file; applied the configuration last put
	// in force (cfg is the one the process started with). A reload at a
	// time (reloadMu); reloadAllow is who may ask for one on the admin API.
	path        string
	applied     *config.Config
	reloadMu    sync.Mutex
	reloadAllow atomic.Pointer[[]string]
	reloads     *prometheus.CounterVec
	maskMetrics *masking.Metrics
	// listening are the protocols whose listeners opened.
	listening map[string]bool

	// adminAuth is auth as the admin API uses it, throttled (adminauth.go).
	adminAuth *adminAuth
}

func newServer(cfg *config.Config, engs []engine.Engine, log *slog.Logger) (srv *server, err error) {
	s := &server{cfg: cfg, applied: cfg, log: log, reg: prometheus.NewRegistry(), engines: engs, listening: map[string]bool{}}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.metrics = session.NewMetrics(s.reg)
	s.maskMetrics = masking.NewMetrics(s.reg)
	s.reloads = newReloadCounter(s.reg)
	s.reloadAllow.Store(&cfg.Reload.Allow)
	auth, err := identity.New(cfg.Config, identity.Options{Logger: log.With("component", "identity")})
	if err != nil {
		return nil, fmt.Errorf("identities: %w", err)
	}
	s.auth = newLiveAuth(auth)
	s.adminAuth = s.newAdminAuth()
	defer func() {
		if err != nil {
			s.closeAll()
		}
	}()
	if err := s.openApprovals(); err != nil {
		return nil, err
	}
	if cfg.Recording.Disabled {
		log.Warn("recording.disabled is set: sessions leave no recording")
	} else if err := s.openRecording(); err != nil {
		return nil, err
	}
	conns, err := s.connectionsOf(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.SSO != nil {
		if err := s.openSSO(conns); err != nil {
			return nil, err
		}
	}
	s.sessOpts = session.Options{
		Auth: s.auth, Connections: conns, Classifier: sqlrisk.New(cfg.Classifier), Approver: s.approver,
		Grants: s.approver.Grants(), Previewers: previewers(engs),
		Recorders: s.recorders(), Metrics: s.metrics, Log: log, Active: s.activeHook(),
		Live: session.NewLive(conns), Throttle: s.adminAuth.throttle,
	}
	s.sessOpts.Limiter = session.NewLimiter(limitsOf(cfg), s.reg)
	s.gateway, err = session.New(s.sessOpts)
	if err != nil {
		return nil, err
	}
	tlsConf, fp, generated, err := cfg.TLS.ServerTLSConfig()
	if err != nil {
		return nil, err
	}
	s.tls = tlsConf
	if cfg.TLS.CertFile == "" {
		log.Info("TLS with a self-signed certificate", "sha256", fp, "generated", generated, "dir", cfg.TLS.Dir)
	}
	return s, nil
}

// connectionsOf compiles each of cfg's connections' policy and masking.
func (s *server) connectionsOf(cfg *config.Config) (map[string]*protocols.Connection, error) {
	maskMetrics := s.maskMetrics
	conns := map[string]*protocols.Connection{}
	for i := range cfg.Connections {
		cn := &cfg.Connections[i]
		pc := cn.ProtocolConnection()
		pol, err := cfg.ConnectionPolicy(cn)
		if err != nil {
			return nil, fmt.Errorf("connections[%d].policy: %w", i, err)
		}
		pc.Policy = pol
		if pol.Audits() {
			s.log.Warn("audit mode (enforce: false) on this connection: the policy's refusals and holds are recorded and counted, and the commands run",
				"connection", cn.Name)
		}
		src, err := masking.New(cfg.ConnectionMasking(cn), cn.Name, maskMetrics, maskingDialect(pc.Protocol))
		if err != nil {
			return nil, fmt.Errorf("connections[%d].masking: %w", i, err)
		}
		pc.Masking = src
		if cc, ok := pc.Upstream.(engine.ConnectionClassifier); ok {
			pc.Classifier = cc.Classifier()
		}
		conns[cn.Name] = pc
	}
	return conns, nil
}

// maskingDialect is how masking reads a protocol's own encodings and
// messages; nil for protocols whose values are plain bytes.
func maskingDialect(p protocols.Protocol) masking.Dialect {
	switch p {
	case protocols.Postgres:
		return pgcodec.Dialect{}
	case protocols.MySQL:
		return mysqlcodec.Dialect{}
	}
	return nil
}

// previewers are the engines that make blast-radius previews, by protocol.
func previewers(engs []engine.Engine) map[protocols.Protocol]protocols.Previewer {
	out := map[protocols.Protocol]protocols.Previewer{}
	for _, e := range engs {
		if pv, ok := e.(protocols.Previewer); ok {
			out[e.Protocol()] = pv
		}
	}
	return out
}

// activeHook is called for each client session while it runs: it keeps the
// scheduler awake (runtime.keep_awake, see awake_linux.go).
func (s *server) activeHook() func() (done func()) {
	if !s.cfg.Runtime.KeepsAwake() {
		return nil
	}
	return scheduler.hold
}

// openApprovals opens the shared store and the approvals service, which
// resolves the commands a policy sends to review.
func (s *server) openApprovals() error {
	cfg := s.cfg
	if cfg.Store.Driver == "sqlite" {
		if dir := filepath.Dir(strings.TrimPrefix(cfg.Store.DSN.Reveal(), "file:")); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return fmt.Errorf("store directory: %w", err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sqldb.Open(ctx, cfg.Store)
	if err != nil {
		return err
	}
	s.db = db
	st, err := approvals.OpenStore(ctx, db, s.log.With("component", "store"))
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	s.store = st
	perConn := map[string]approvals.ConnectionConfig{}
	allowed := map[string]protocols.Principals{}
	for _, cn := range cfg.Connections {
		if cn.Approvals != nil {
			perConn[cn.Name] = *cn.Approvals
		}
		allowed[cn.Name] = protocols.Principals(cn.Allow)
	}
	svc, err := approvals.Open(ctx, approvals.Options{
		Config: cfg.Approvals, Connections: perConn, Store: st, Allowed: allowed,
		Log: s.log, Registerer: s.reg,
	})
	if err != nil {
		return fmt.Errorf("approvals: %w", err)
	}
	s.approver = svc
	return nil
}

// openRecording opens the session index in the shared store and the
// recording factory: from here on no session runs unrecorded.
func (s *server) openRecording() error {
	rc := s.cfg.Recording
	key, err := rc.Key()
	if err != nil {
		return fmt.Errorf("recording.hmac_key_env: %w", err)
	}
	dir, err := filepath.Abs(rc.Dir)
	if err != nil {
		return fmt.Errorf("recording.dir: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The node is the approvals replica name, so a shared store sees one
	// name per process.
	node := s.approver.Replica()
	idx, err := index.Open(ctx, s.db.DB, string(s.db.Dialect), index.Options{
		Node: node, Dir: dir, Log: s.log.With("component", "session-index")})
	if err != nil {
		return fmt.Errorf("session index: %w", err)
	}
	s.index = idx
	if _, err := idx.Adopt(ctx); err != nil {
		s.log.Warn("could not register the recordings a previous run left out of the index", "err", err)
	}
	if n, err := idx.Abandon(ctx, time.Now()); err != nil {
		s.log.Warn("could not close the index entries of a previous run", "err", err)
	} else if n > 0 {
		s.log.Warn("closed index entries of sessions a previous run left open", "sessions", n)
	}
	f, err := recording.NewFactory(rc, recording.Options{
		Key: key, Index: idx, Metrics: recording.NewMetrics(s.reg),
		Log: s.log.With("component", "recording"), Version: version, Node: node,
	})
	if err != nil {
		return fmt.Errorf("recording: %w", err)
	}
	s.recorder = f
	if key == nil {
		s.log.Warn("recordings are hash-chained but not signed: set recording.hmac_key_env to sign them")
	}
	return nil
}

// closeAll releases what newServer opened, last opened first.
func (s *server) closeAll() {
	if s.recorder != nil {
		if err := s.recorder.Close(); err != nil {
			s.log.Error("closing recordings", "err", err)
		}
		s.recorder = nil
	}
	if s.index != nil {
		_ = s.index.Close()
		s.index = nil
	}
	if s.approver != nil {
		_ = s.approver.Close()
		s.approver = nil
	}
	s.store = nil
	if s.db != nil {
		_ = s.db.Close()
		s.db = nil
	}
}

// recorders is the sessions' recording factory, nil when none is open.
func (s *server) recorders() protocols.RecorderFactory {
	if s.recorder == nil {
		return nil
	}
	return s.recorder
}

// run serves until ctx ends, then drains: /readyz turns unready, the
// listeners close, commands held for approval are withdrawn, each session
// ends once its command in flight has finished (or been cancelled past
// shutdown.drain_timeout), and the recordings are closed.
func (s *server) run(ctx context.Context) error {
	defer func() {
		for _, c := range s.closers {
			_ = c()
		}
		s.closeAll()
	}()
	// bg runs the process's own work (retention, sign-in, readiness) until
	// the sessions are drained; serving ends at the start of the drain.
	bg, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()
	serving, stopServing := context.WithCancel(ctx)
	defer stopServing()
	s.startBackground(bg)
	s.ready = newReadiness(s)
	var wg sync.WaitGroup
	errc := make(chan error, len(s.engines)+2)
	if admin := s.cfg.Listen["admin"]; admin != "" {
		if err := s.serveAdmin(s.listen, admin, errc); err != nil {
			return err
		}
	}
	if err := s.serveEngines(serving, &wg, errc); err != nil {
		return err
	}
	if addr := s.cfg.Listen["http"]; addr != "" {
		if err := s.serveAgents(serving, s.listen, addr, &wg, errc); err != nil {
			return err
		}
	}
	checksDone := s.runChecks(bg)
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	start := time.Now()
	s.ready.draining.Store(true)
	s.gateway.Live().Drain()
	stopServing()
	wg.Wait()
	s.log.Info("sessions drained", "took", time.Since(start).Round(time.Millisecond))
	// The checks read the store and the recordings, which close next.
	stopBackground()
	checksDone.Wait()
	return err
}

// startBackground starts the process's own work (retention, sign-in, OIDC
// discovery), which runs until bg ends.
func (s *server) startBackground(bg context.Context) {
	if s.index != nil {
		go s.index.Run(bg, s.cfg.Recording.Retention)
	}
	if s.sso != nil {
		go s.sso.Run(bg)
	}
	if s.cfg.OIDC != nil {
		go func() {
			if err := s.auth.Discover(bg); err != nil {
				s.log.Warn("OIDC issuer not reachable yet; will retry on first use", "err", err)
			}
		}()
	}
}

// listen opens a listener and announces it.
func (s *server) listen(name, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s on %s: %w", name, addr, err)
	}
	s.log.Info("listening", "listener", name, "addr", ln.Addr().String())
	if s.sso != nil {
		s.sso.Listening(name, ln.Addr().String())
	}
	return ln, nil
}

// serveEngines opens the listener of each wire engine that a connection
// uses and serves it until serving ends; HTTP engines are served on the
// HTTP listener instead.
func (s *server) serveEngines(serving context.Context, wg *sync.WaitGroup, errc chan<- error) error {
	for _, e := range s.engines {
		if _, ok := e.(engine.HTTPHandler); ok {
			// Served on the HTTP listener (serveAgents), whose key it shares.
			if s.cfg.Listen["http"] == "" && len(s.gateway.Connections(e.Protocol())) > 0 {
				s.log.Warn("connections not served: set listen.http", "protocol", string(e.Protocol()))
			}
			continue
		}
		name := string(e.Protocol())
		addr := s.cfg.Listen[name]
		if addr == "" {
			continue
		}
		if len(s.gateway.Connections(e.Protocol())) == 0 {
			s.log.Info("listener not opened: no connection uses its protocol", "listener", name)
			continue
		}
		ln, err := s.listen(name, addr)
		if err != nil {
			return err
		}
		s.reloadMu.Lock() // a reload reads which listeners are open
		s.listening[name] = true
		s.reloadMu.Unlock()
		deps := engine.Deps{Gateway: s.gateway, TLS: s.tls, Log: s.log,
			RecordParameters: s.cfg.Recording.Parameters && !s.cfg.Recording.Disabled,
			HandshakeTimeout: s.cfg.Handshake.Timeout, MaxUnauthenticated: s.cfg.Handshake.MaxPending,
			DrainTimeout: s.cfg.Shutdown.DrainTimeout, CancelTimeout: s.cfg.Shutdown.CancelTimeout}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.Serve(serving, ln, deps); err != nil {
				errc <- fmt.Errorf("%s listener: %w", name, err)
			}
		}()
	}
	return nil
}

// runChecks starts the readiness checks and, on a shared PostgreSQL store,
// the replica heartbeat, until ctx ends; both read the store and the
// recordings, so the returned group is waited for before they close.
func (s *server) runChecks(ctx context.Context) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Go(func() { s.ready.run(ctx) })
	if s.index != nil && s.db.Dialect == sqldb.Postgres {
		wg.Go(func() { s.watchReplicas(ctx) })
	}
	return &wg
}

// serveAdmin opens the admin listener; it closes last, after the drain,
// so /readyz answers throughout.
func (s *server) serveAdmin(listen func(name, addr string) (net.Listener, error), addr string, errc chan<- error) error {
	ln, err := listen("admin", addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("admin listener: %w", err)
		}
	}()
	s.closers = append(s.closers, func() error {
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		err := hs.Shutdown(sctx)
		<-done
		return err
	})
	return nil
}

// serveAgents opens the HTTP listener of the agent query API and the MCP
// endpoint.
func (s *server) serveAgents(ctx context.Context, listen func(name, addr string) (net.Listener, error), addr string, wg *sync.WaitGroup, errc chan<- error) error {
	var issuers []string
	if s.cfg.OIDC != nil {
		issuers = []string{s.cfg.OIDC.Issuer}
	}
	srv, err := agent.New(agent.Options{
		Session: s.sessOpts, Approvals: s.approver, Engines: s.engines, AdminURL: s.cfg.Approvals.AdminURL,
		AuthorizationServers: issuers, TLS: s.tls, Log: s.log, HandshakeTimeout: s.cfg.Handshake.Timeout,
		MaxPending: s.cfg.Handshake.MaxPending, Registerer: s.reg,
		DrainTimeout: s.cfg.Shutdown.DrainTimeout, CancelTimeout: s.cfg.Shutdown.CancelTimeout,
	})
	if err != nil {
		return err
	}
	ln, err := listen("http", addr)
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ctx, ln); err != nil {
			errc <- fmt.Errorf("http listener: %w", err)
		}
	}()
	return nil
}

func (s *server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	switch {
	case s.approver != nil && s.sso != nil:
		s.approver.MountWithSignIn(mux, s.adminAuth, s.reviewerSignIn())
	case s.approver != nil:
		s.approver.Mount(mux, s.adminAuth)
	}
	if s.sso != nil {
		s.sso.Mount(mux)
	}
	if s.servesPprof() {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", s.ready.serveReady)
	mux.HandleFunc("POST /admin/reload", s.serveReload)
	return withPeer(mux)
}
