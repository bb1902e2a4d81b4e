package approvals

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airlock-gw/airlock/protocols"
)

// Options configure a Service.
type Options struct {
	Config Config
	// Connections holds each connection's own block by connection name.
	Connections map[string]ConnectionConfig
	// Store is required; the Service does not close it.
	Store Store
	Log   *slog.Logger
	// Registerer receives the approvals metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// PollInterval is how often a held session re-reads its request in case
	// a wake-up was lost (default 5s).
	PollInterval time.Duration
	// SweepInterval is how often expired requests are swept (default 15s).
	SweepInterval time.Duration
	// HTTPClient sends webhooks (default: a client with a 10s timeout).
	HTTPClient *http.Client
	// WebhookRetry bounds webhook retries (default 6 attempts, 1s doubling
	// to 1m).
	WebhookRetry Backoff
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
	// Allowed lists who may use each connection, by name: callers ask for
	// access to these connections only. nil turns access requests off.
	Allowed map[string]protocols.Principals
}

// maxCommandBytes caps the command text a reviewer is asked to read. A
// longer command is refused: nobody can review it meaningfully.
const maxCommandBytes = 1 << 20

// Service resolves review decisions by human approval. It implements
// protocols.Approver and serves the reviewers' channels (Handler).
type Service struct {
	cfg     Config
	conns   map[string]ConnectionConfig
	store   Store
	log     *slog.Logger
	m       *metrics
	hub     *hub
	hooks   *notifier
	now     func() time.Time
	replica string
	poll    time.Duration
	sweep   time.Duration

	refresh chan struct{}
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	// allowed and access serve access requests; access is nil when they
	// are off (no connections given, or a store without them).
	allowed map[string]protocols.Principals
	access  *grantView
}

// Open validates the configuration, expires the hold-mode requests this
// replica left behind in its previous life, and starts the store watcher,
// the sweeper and the webhook workers. Close stops them.
func Open(ctx context.Context, o Options) (*Service, error) {
	if o.Store == nil {
		return nil, errors.New("open approvals: no store")
	}
	errs := []error{o.Config.Validate("approvals")}
	for name, c := range o.Connections {
		errs = append(errs, c.Validate(fmt.Sprintf("connections[%s].approvals", name)))
	}
	errs = append(errs, CheckAccessRoles(&o.Config.Access, o.Connections))
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("open approvals: %w", err)
	}
	s := &Service{
		cfg: o.Config, conns: o.Connections, store: o.Store, log: o.Log, now: o.Now,
		hub: newHub(), poll: o.PollInterval, sweep: o.SweepInterval, refresh: make(chan struct{}, 1),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "approvals")
	if s.now == nil {
		s.now = time.Now
	}
	if s.poll <= 0 {
		s.poll = 5 * time.Second
	}
	if s.sweep <= 0 {
		s.sweep = 15 * time.Second
	}
	if s.cfg.AdminURL == "" {
		s.cfg.AdminURL = DefaultAdminURL
	}
	s.cfg.AdminURL = strings.TrimRight(s.cfg.AdminURL, "/")
	if s.cfg.Retention == 0 {
		s.cfg.Retention = DefaultRetention
	}
	s.replica = s.cfg.Replica
	if s.replica == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "airlock"
		}
		s.replica = h
	}
	s.m = newMetrics(o.Registerer)
	s.hooks = newNotifier(s.cfg.Webhooks, o.HTTPClient, o.WebhookRetry, s.cfg.AdminURL, s.log, s.m)

	left, err := s.store.ExpireReplica(ctx, s.replica, s.now())
	if err != nil {
		return nil, fmt.Errorf("open approvals: expire requests of replica %s's previous run: %w", s.replica, err)
	}
	for _, r := range left {
		s.finished(r, "expired", "the replica holding the session restarted")
	}

	s.allowed = o.Allowed
	if as, ok := s.store.(AccessStore); ok && o.Allowed != nil && !s.cfg.Access.Disabled {
		s.access = newGrantView(s, as)
		// Grants made before a restart are in force from the first command.
		s.access.refresh(ctx)
	}

	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.hooks.start(&s.wg)
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.store.Watch(bg, s.changed); err != nil && bg.Err() == nil {
			s.log.Error("approvals store watch ended; relying on polling", "err", err)
		}
	}()
	if s.access != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.access.run(bg)
		}()
	}
	go func() {
		defer s.wg.Done()
		s.sweepLoop(bg)
	}()
	return s, nil
}

// Close stops the background work and waits for it, giving queued webhooks
// a few seconds to go out. It does not close the Store.
func (s *Service) Close() error {
	s.cancel()
	s.hooks.close(5 * time.Second)
	s.wg.Wait()
	return nil
}

// changed is called with the id of each change the store announces.
func (s *Service) changed(id string) {
	s.hub.wake(id)
	if s.access != nil {
		s.access.changed(id)
	}
}

// Replica returns the name this process records on its requests.
func (s *Service) Replica() string { return s.replica }

// ExpireReplica expires the hold-mode requests another replica left
// pending or approved and unused: one that stopped heartbeating in the
// shared store, whose held sessions ended with it. The callers may ask
// again; retry-mode requests belong to no replica and stay.
func (s *Service) ExpireReplica(ctx context.Context, replica string) (int, error) {
	left, err := s.store.ExpireReplica(ctx, replica, s.now())
	if err != nil {
		return 0, fmt.Errorf("expire requests of replica %s: %w", replica, err)
	}
	for _, r := range left {
		s.finished(r, "expired", "the replica holding the session stopped")
	}
	return len(left), nil
}

func (s *Service) sweepLoop(ctx context.Context) {
	t := time.NewTicker(s.sweep)
	defer t.Stop()
	s.sweepOnce(ctx) // what ran out of time while no replica was up
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sweepOnce(ctx)
		case <-s.refresh:
			s.refreshPending(ctx)
		}
	}
}

func (s *Service) sweepOnce(ctx context.Context) {
	now := s.now()
	expired, err := s.store.Sweep(ctx, now, now.Add(-s.cfg.Retention))
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("sweep approval requests", "err", err)
		}
		return
	}
	for _, r := range expired {
		s.finished(r, "expired", "no decision in time")
	}
	s.refreshPending(ctx)
}

func (s *Service) refreshPending(ctx context.Context) {
	n, err := s.store.CountPending(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("count pending approval requests", "err", err)
		}
		return
	}
	s.m.pending.Set(float64(n))
}

func (s *Service) requestRefresh() {
	select {
	case s.refresh <- struct{}{}:
	default:
	}
}

// settingsFor resolves the rules for a caller on a connection.
func (s *Service) settingsFor(connection string, id *protocols.Identity) settings {
	return resolve(&s.cfg, s.conns, connection, id)
}

// requested logs, counts and announces a new request.
func (s *Service) requested(r *Request) {
	s.m.event("requested", r, r.CreatedAt)
	s.auditLog(r).Info("approval requested", "mode", r.Mode, "expires", r.ExpiresAt)
	s.log.Debug("approval requested: command", "approval", r.ID, "command", r.Command)
	s.hooks.send(eventRequested, r)
	s.requestRefresh()
}

// finished logs, counts and announces a transition this replica made.
func (s *Service) finished(r *Request, decision, why string) {
	at := r.DecidedAt
	switch decision {
	case "consumed":
		at = r.ConsumedAt
	case "cancelled", "expired":
		at = s.now()
	}
	s.m.event(decision, r, at)
	l := s.auditLog(r).With("decision", decision)
	if why != "" {
		l = l.With("why", why)
	}
	if len(r.Decisions) > 0 {
		votes := make([]string, len(r.Decisions))
		for i, v := range r.Decisions {
			votes[i] = v.Reviewer + " " + string(v.Verdict)
			if v.Reason != "" {
				votes[i] += ": " + v.Reason
			}
		}
		l = l.With("decisions", votes)
	}
	l.Info("approval " + decision)
	if decision != "consumed" {
		s.hooks.send(eventName(decision), r)
	}
	s.requestRefresh()
}

func (s *Service) auditLog(r *Request) *slog.Logger {
	return s.log.With("approval", r.ID, "identity", r.Identity.Name, "connection", r.Connection,
		"protocol", string(r.Protocol), "session", r.SessionID, "replica", r.Replica,
		"risk", r.Risk.String(), "rules", r.Rules, "command_sha256", r.CommandSHA256)
}

// approveHint tells the caller how a reviewer approves request id.
func (s *Service) approveHint(id string) string {
	return fmt.Sprintf("approval required: request %s; approve with \"airlock approvals approve %s\" or at %s/approvals/%s",
		id, id, s.cfg.AdminURL, id)
}

var _ protocols.Approver = (*Service)(nil)
