package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/airlock-gw/airlock/approvals"
	"github.com/airlock-gw/airlock/cmd/airlock/config"
	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/session/identity"
)

// A reload (SIGHUP, or POST /admin/reload by an identity reload.allow
// names) reads the configuration file again. A file that does not load is
// rejected with every problem logged, and the configuration in force keeps
// serving. Otherwise the identities, the connections (their upstreams,
// who may use them, their policies and masking) and the global policy and
// masking change at once for new sessions, and for the next command of
// every open session, which is not dropped; what is set up once at start
// (listeners, TLS, the store, recordings, approvals, single sign-on, the
// engines' own sections, ...) is reported as needing a restart.

// reloadResult is what a reload did, for the log and the admin API.
type reloadResult struct {
	Applied bool `json:"applied"`
	// Changed names what took effect; Restart what changed in the file but
	// takes effect only at a restart; Errors why the file was rejected.
	Changed []string `json:"changed,omitempty"`
	Restart []string `json:"restart_required,omitempty"`
	Errors  []string `json:"errors,omitempty"`
}

// reload reads the configuration file again and puts what it can in force.
func (s *server) reload(source string) reloadResult {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	log := s.log.With("source", source)
	res, err := s.tryReload()
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			if line != "" {
				res.Errors = append(res.Errors, line)
			}
		}
		s.reloads.WithLabelValues("rejected").Inc()
		log.Error("configuration reload rejected; the configuration in force keeps serving",
			"config", s.path, "problems", len(res.Errors))
		for _, p := range res.Errors {
			log.Error("configuration problem", "problem", p)
		}
		return res
	}
	s.reloads.WithLabelValues("applied").Inc()
	log.Info("configuration reloaded", "config", s.path, "changed", strings.Join(res.Changed, ", "))
	for _, r := range res.Restart {
		log.Warn("configuration change needs a restart to take effect", "change", r)
	}
	return res
}

func (s *server) tryReload() (reloadResult, error) {
	var res reloadResult
	cfg, err := config.Load(s.path, engines()...)
	if err != nil {
		return res, err
	}
	auth, err := identity.New(cfg.Config, identity.Options{Logger: s.log.With("component", "identity")})
	if err != nil {
		return res, fmt.Errorf("identities: %w", err)
	}
	conns, err := s.connectionsOf(cfg)
	if err != nil {
		return res, err
	}
	old := s.applied
	res.Changed = appliedChanges(old, cfg)
	before := map[string]*protocols.Connection{}
	for _, c := range s.gateway.Live().Connections() {
		before[c.Name] = c
	}
	res.Restart = restartChanges(s.cfg, cfg, before, conns, s.listening)
	s.auth.swap(auth)
	if cfg.OIDC != nil {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := auth.Discover(ctx); err != nil {
				s.log.Warn("OIDC issuer not reachable yet after the reload; will retry on first use", "err", err)
			}
		}()
	}
	s.gateway.Live().Reload(conns)
	s.sessOpts.Limiter.SetLimits(limitsOf(cfg))
	for _, e := range s.engines {
		if r, ok := e.(engine.Reloader); ok {
			r.Reloaded()
		}
	}
	s.reloadAllow.Store(&cfg.Reload.Allow)
	s.applied = cfg
	res.Applied = true
	return res, nil
}

// appliedChanges names what a reload puts in force.
func appliedChanges(old, cur *config.Config) []string {
	var out []string
	if !sameYAML(old.Identities, cur.Identities) || !sameYAML(old.OIDC, cur.OIDC) {
		out = append(out, "identities")
	}
	if !sameYAML(old.Policy, cur.Policy) {
		out = append(out, "policy")
	}
	if !sameYAML(old.Masking, cur.Masking) {
		out = append(out, "masking")
	}
	if !sameYAML(old.Reload, cur.Reload) {
		out = append(out, "reload.allow")
	}
	if !sameYAML(old.Limits, cur.Limits) {
		out = append(out, "limits")
	}
	names := map[string]bool{}
	for _, c := range old.Connections {
		names[c.Name] = true
	}
	for _, c := range cur.Connections {
		switch prev := connectionNamed(old, c.Name); {
		case prev == nil:
			out = append(out, "connection "+c.Name+" added")
		case !sameConnection(prev, &c):
			out = append(out, "connection "+c.Name+" changed")
		}
		delete(names, c.Name)
	}
	for _, name := range slices.Sorted(mapsKeys(names)) {
		out = append(out, "connection "+name+" removed")
	}
	if len(out) == 0 {
		out = append(out, "nothing")
	}
	return out
}

// restartChanges names what changed in the file but is set up once, at
// start, against the configuration the process started with.
func restartChanges(start, cur *config.Config, before, after map[string]*protocols.Connection, listening map[string]bool) []string {
	var out []string
	for _, d := range []struct {
		name     string
		old, new any
	}{
		{"listen", start.Listen, cur.Listen}, {"tls", start.TLS, cur.TLS}, {"log", start.Log, cur.Log},
		{"debug", start.Debug, cur.Debug}, {"runtime", start.Runtime, cur.Runtime}, {"sso", start.SSO, cur.SSO},
		{"store", start.Store, cur.Store}, {"approvals", start.Approvals, cur.Approvals},
		{"classifier", start.Classifier, cur.Classifier}, {"recording", start.Recording, cur.Recording},
		{"handshake", start.Handshake, cur.Handshake}, {"shutdown", start.Shutdown, cur.Shutdown},
		{"readiness", start.Readiness, cur.Readiness},
		{"auth_throttle", start.AuthThrottle, cur.AuthThrottle},
	} {
		if !sameYAML(d.old, d.new) {
			out = append(out, d.name)
		}
	}
	for _, name := range slices.Sorted(mapsKeys(cur.Engines)) {
		a, b := start.Engines[name], cur.Engines[name]
		if !sameYAML(&a, &b) {
			out = append(out, name+" (the engine's section)")
		}
	}
	for _, c := range cur.Connections {
		prev := connectionNamed(start, c.Name)
		var was any
		if prev != nil {
			was = prev.Approvals
		}
		if !sameYAML(was, c.Approvals) {
			out = append(out, "connections."+c.Name+".approvals")
		}
	}
	for name, c := range after {
		if !listening[string(c.Protocol)] {
			out = append(out, fmt.Sprintf("listen.%s (connection %s needs the %s listener, not open since no connection used it at start)", c.Protocol, name, c.Protocol))
		}
	}
	if start.SSO != nil && !sameConnectionSet(before, after) {
		out = append(out, "sso (the connections airlock login offers)")
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func connectionNamed(c *config.Config, name string) *config.Connection {
	for i := range c.Connections {
		if c.Connections[i].Name == name {
			return &c.Connections[i]
		}
	}
	return nil
}

func sameConnection(a, b *config.Connection) bool {
	return sameYAML(a, b)
}

func sameConnectionSet(a, b map[string]*protocols.Connection) bool {
	if len(a) != len(b) {
		return false
	}
	for name := range a {
		if b[name] == nil {
			return false
		}
	}
	return true
}

// sameYAML compares two values as the file would write them, so that
// node positions and unexported state do not count.
func sameYAML(a, b any) bool {
	if reflect.DeepEqual(a, b) {
		return true
	}
	x, err1 := yaml.Marshal(a)
	y, err2 := yaml.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

func mapsKeys[M ~map[string]V, V any](m M) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// newReloadCounter counts reloads by outcome.
func newReloadCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "airlock_config_reloads_total",
		Help: "Configuration reloads, by outcome: applied or rejected."}, []string{"outcome"})
	reg.MustRegister(c)
	c.WithLabelValues("applied")
	c.WithLabelValues("rejected")
	return c
}

// serveReload is POST /admin/reload: a reload by an identity that
// reload.allow names, answered with what it did (422 when the file was
// rejected).
func (s *server) serveReload(w http.ResponseWriter, r *http.Request) {
	token, ok := bearer(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="airlock"`)
		http.Error(w, "reloading needs an identity token: Authorization: Bearer TOKEN", http.StatusUnauthorized)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	id, err := s.adminAuth.Authenticate(ctx, "", token)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="airlock", error="invalid_token"`)
		http.Error(w, "the token was not accepted", http.StatusUnauthorized)
		return
	}
	if allow := s.reloadAllow.Load(); allow == nil || !protocols.Principals(*allow).Match(id) {
		s.log.Warn("configuration reload refused", "identity", id.Name)
		http.Error(w, fmt.Sprintf("identity %q may not reload the configuration (see reload.allow)", id.Name), http.StatusForbidden)
		return
	}
	res := s.reload("admin api, identity " + id.Name)
	w.Header().Set("Content-Type", "application/json")
	if !res.Applied {
		w.WriteHeader(http.StatusUnprocessableEntity)
	}
	_ = json.NewEncoder(w).Encode(res)
}

// bearer returns the request's bearer token.
func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	return token, ok && strings.EqualFold(scheme, "Bearer") && token != ""
}

// runReload is `airlock reload`: the running Airlock reads its
// configuration file again (POST /admin/reload), as SIGHUP makes it do.
func runReload(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", cmp.Or(os.Getenv("AIRLOCK_SERVER"), approvals.DefaultServer), "the admin listener (default $AIRLOCK_SERVER)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	token := strings.TrimSpace(os.Getenv("AIRLOCK_TOKEN"))
	if token == "" {
		fmt.Fprintln(stderr, "airlock reload: AIRLOCK_TOKEN is not set (the token of an identity reload.allow names)")
		return 2
	}
	req, err := http.NewRequest(http.MethodPost, strings.TrimRight(*server, "/")+"/admin/reload", nil)
	if err != nil {
		fmt.Fprintf(stderr, "airlock reload: %v\n", err)
		return 2
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "airlock reload: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var res reloadResult
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnprocessableEntity || json.Unmarshal(body, &res) != nil {
		fmt.Fprintf(stderr, "airlock reload: %s: %s\n", resp.Status, strings.TrimSpace(string(body)))
		return 1
	}
	if !res.Applied {
		fmt.Fprintln(stderr, "airlock reload: the configuration was rejected; the one in force keeps serving:")
		for _, e := range res.Errors {
			fmt.Fprintf(stderr, "  %s\n", e)
		}
		return 1
	}
	fmt.Fprintf(stdout, "reloaded: %s\n", strings.Join(res.Changed, ", "))
	for _, r := range res.Restart {
		fmt.Fprintf(stdout, "needs a restart: %s\n", r)
	}
	return 0
}
