package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// httpClients is the HTTP load generator's concurrency.
const httpClients = 16

// httpItem is one record of the upstream's small JSON API: an e-mail
// address gives masking work to do.
type httpItem struct {
	ID      int     `json:"id"`
	Name    string  `json:"name"`
	Email   string  `json:"email"`
	Price   float64 `json:"price"`
	InStock bool    `json:"in_stock"`
	Tags    []string
}

// httpUpstream is the suite's upstream: GET /items/<id> returns one item,
// GET /items?limit=<n> a list of n.
func httpUpstream() http.Handler {
	item := func(id int) httpItem {
		return httpItem{ID: id, Name: fmt.Sprintf("Item %d", id), Email: fmt.Sprintf("owner%d@example.com", id),
			Price: float64(id%1000) + 0.99, InStock: id%3 != 0, Tags: []string{"bench", "catalogue"}}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil {
			http.Error(w, `{"error":"bad id"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(item(id))
	})
	mux.HandleFunc("GET /items", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		n = min(max(n, 1), 500)
		out := make([]httpItem, n)
		for i := range out {
			out[i] = item(i + 1)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	return mux
}

// httpWorkloads are the Go load generator's runs.
func httpWorkloads() []protoWorkload {
	mk := func(key, path, what string) protoWorkload {
		return protoWorkload{Key: key,
			Desc: fmt.Sprintf("GET %s (%s) from %d keep-alive clients for the run's duration; one operation is one request.", path, what, httpClients),
			run: func(ctx context.Context, t *protoTarget, dur time.Duration) (protoRun, error) {
				return httpLoad(ctx, t, path, httpClients, dur)
			}}
	}
	return []protoWorkload{
		mk("get-item-c16", "/items/<1..1000>", "one JSON object of about 150 bytes"),
		mk("get-list50-c16", "/items?limit=50", "a JSON array of 50 objects, about 7 KB"),
	}
}

// httpLoad runs clients keep-alive clients against t for dur, each
// sending its next request when the last one's body has been read.
func httpLoad(ctx context.Context, t *protoTarget, path string, clients int, dur time.Duration) (protoRun, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	return closedLoop(ctx, clients, dur, func(ctx context.Context, n int) error {
		return httpGet(ctx, client, t, strings.Replace(path, "<1..1000>", strconv.Itoa(n%1000+1), 1))
	})
}

// closedLoop runs op from clients goroutines for dur, each starting its
// next operation (numbered n) when the last one has ended, and measures
// every operation's latency. An operation still running at the end is not
// counted; any failed one fails the run.
func closedLoop(ctx context.Context, clients int, dur time.Duration, op func(ctx context.Context, n int) error) (protoRun, error) {
	ctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	lat := make([][]int64, clients)
	var failed atomic.Int64
	// A pointer, not an atomic.Value: errors of different types would
	// make its CompareAndSwap panic.
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	// The context's own deadline, not start+dur: a dial given ctx times
	// out at that deadline, which comes a moment before start+dur, and
	// may report its timeout before ctx.Err does.
	end, _ := ctx.Deadline()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := i; ctx.Err() == nil; n += clients {
				t0 := time.Now()
				err := op(ctx, n)
				if ctx.Err() != nil || !time.Now().Before(end) {
					// The run ended inside this operation (a dial's
					// deadline may expire just before ctx says so).
					return
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, &err)
					continue
				}
				lat[i] = append(lat[i], time.Since(t0).Microseconds())
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if p := firstErr.Load(); p != nil {
		return protoRun{}, fmt.Errorf("%d operations failed, the first: %w", failed.Load(), *p)
	}
	return latencyRun(slices.Concat(lat...), elapsed)
}

// latencyRun summarises the latencies (µs) of requests made in elapsed.
func latencyRun(all []int64, elapsed time.Duration) (protoRun, error) {
	if len(all) == 0 {
		return protoRun{}, errors.New("no request completed")
	}
	slices.Sort(all)
	return protoRun{Ops: int64(len(all)), PerSec: float64(len(all)) / elapsed.Seconds(),
		P50us: percentile(all, 50), P99us: percentile(all, 99), Elapsed: elapsed}, nil
}

// httpGet makes one request and reads the whole body.
func httpGet(ctx context.Context, client *http.Client, t *protoTarget, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+t.addr()+t.db+path, nil)
	if err != nil {
		return err
	}
	if t.password != "" {
		req.Header.Set("Authorization", "Bearer "+t.password)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || n == 0 {
		return fmt.Errorf("GET %s: status %d, %d bytes", path, resp.StatusCode, n)
	}
	return nil
}

// startHTTPUpstream serves httpUpstream on a free loopback port until ctx
// ends or stop is called.
func startHTTPUpstream() (port int, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, nil, fmt.Errorf("http upstream: %w", err)
	}
	srv := &http.Server{Handler: httpUpstream(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().(*net.TCPAddr).Port, func() { _ = srv.Close() }, nil
}

// httpTargets starts the HTTP suite's Airlock targets in front of the
// upstream on port up.
func (b *bench) httpTargets(ctx context.Context, suite *ProtoSuite, up int) ([]*protoTarget, error) {
	targets := []*protoTarget{{name: targetDirect, desc: "the upstream JSON API itself (served by the harness)", host: "127.0.0.1", port: up}}
	conn := fmt.Sprintf(`- name: api
  protocol: http
  upstream: {url: "http://127.0.0.1:%d"}
  allow: [%s]`, up, benchIdentity)
	for _, m := range []struct {
		name, mode, desc string
		full             bool
	}{
		{protoDecode, "decode", "`http: {mode: decode}`: the HTTP proxy (`/proxy/api/…`) authenticating and forwarding, nothing classified, masked or recorded", false},
		{protoPlain, "", "the HTTP proxy in its default mode, inspect, with the default policy, no masking and `recording: {disabled: true}`", false},
		{protoFull, "", "the same with masking (e-mail addresses in JSON bodies) and every exchange recorded", true},
	} {
		c := protoAirlock{Name: m.name, Listener: "http", Mode: m.mode, Connection: conn, Top: []string{"recording: {disabled: true}"}}
		if m.full {
			rec, err := b.recordingSection("http", m.name)
			if err != nil {
				return nil, err
			}
			c.Top = []string{rec}
			c.Connection += "\n  masking: {detect: [{entity: email, strategy: redact}]}"
		}
		t, err := b.startProtoAirlock(ctx, c, benchIdentity, "/proxy/api")
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			suite.Notes = append(suite.Notes, m.name+" not run: "+oneLineErr(err))
			b.log.Warn("target not run", "target", m.name, "err", err)
			continue
		}
		t.desc = m.desc
		targets = append(targets, t)
		if m.full {
			suite.Notes = append(suite.Notes, checkHTTPMasking(ctx, t))
		}
	}
	return targets, nil
}

// checkHTTPMasking fetches one item through t and says whether its e-mail
// address came back masked, for the report.
func checkHTTPMasking(ctx context.Context, t *protoTarget) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+t.addr()+t.db+"/items/1", nil)
	if err != nil {
		return "masking not checked: " + err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+t.password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "masking not checked: " + oneLineErr(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	switch {
	case resp.StatusCode != http.StatusOK:
		return fmt.Sprintf("**masking not checked: %s answered %d**", t.name, resp.StatusCode)
	case strings.Contains(string(body), "owner1@example.com"):
		return fmt.Sprintf("**%s returned the e-mail address unmasked: its figures do not include masking.**", t.name)
	default:
		return fmt.Sprintf("%s masks: GET /items/1 came back as `%s`.", t.name, strings.TrimSpace(string(body)))
	}
}

// runHTTPSuite runs the HTTP workloads against the harness's upstream,
// directly and through Airlock.
func (b *bench) runHTTPSuite(ctx context.Context) *ProtoSuite {
	suite := &ProtoSuite{Name: suiteHTTP, Title: "HTTP with a Go load generator",
		Tool: fmt.Sprintf("The harness's own load generator (Go net/http, %d keep-alive clients, each sending its next request when the last body has been read) against a small JSON API the harness serves on loopback; through Airlock with `Authorization: Bearer <token>`. The upstream and the load generator share the harness process, so CPU per operation is Airlock's alone.", httpClients)}
	up, stop, err := startHTTPUpstream()
	if err != nil {
		suite.Err = oneLineErr(err)
		return suite
	}
	defer stop()
	return b.runSuite(ctx, suite, func() ([]*protoTarget, error) { return b.httpTargets(ctx, suite, up) }, httpWorkloads())
}
