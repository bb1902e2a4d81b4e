package main

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// sessionsConfig fronts upstream with one HTTP connection (the only
// connection, so that all open sessions are its) whose idle sessions
// close after a second.
func sessionsConfig(upstream string) string {
	return fmt.Sprintf(`
listen:
  admin: 127.0.0.1:0
  http: 127.0.0.1:0
log:
  level: info
identities:
  - name: dev
    groups: [developers]
    token_sha256: %s
http:
  session_idle: 1s
connections:
  - name: api
    protocol: http
    upstream:
      url: http://%s
    allow: [dev]
`, devTokenHash, upstream)
}

// getAll has callers concurrent callers send n GETs of path in all, and
// reports the first failure.
func getAll(c *http.Client, url string, callers, n int) error {
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n/callers + min(1, max(0, n%callers-i)) {
				err := getOnce(c, url)
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

func getOnce(c *http.Client, url string) error {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+devToken)
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", url, res.StatusCode, body)
	}
	return nil
}

// TestHTTPSessionReuse: a steady concurrent caller reuses its sessions
// instead of opening one (and a recording) for most requests, and the
// sessions a burst opened beyond its steady concurrency close once idle.
func TestHTTPSessionReuse(t *testing.T) {
	up := serveStandIn(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(300 * time.Millisecond)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":7,"name":"widget","price":12.5}`))
	}))
	in := startAirlock(t, sessionsConfig(up.addr))
	base := "http://" + in.addr("http") + "/proxy/api"
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	if err := getAll(c, base+"/item", 16, 2000); err != nil {
		t.Fatal(err)
	}
	// A request's response reaches its caller just before its session is
	// given back, so a caller's next request may briefly need another:
	// 16 callers hold at most 32 sessions.
	files := len(recordings(t, in))
	t.Logf("16 concurrent callers, 2000 requests: %d sessions", files)
	if files < 1 || files > 32 {
		t.Errorf("16 concurrent callers, 2000 requests: %d sessions recorded, want 1 to 32", files)
	}

	if err := getAll(c, base+"/slow", 48, 48); err != nil {
		t.Fatal(err)
	}
	// The last sessions are given back as their responses end: wait a
	// little (well under session_idle) for those past max idle to close.
	n := activeSessions(in.metrics(t))
	for end := time.Now().Add(500 * time.Millisecond); n > 32 && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
		n = activeSessions(in.metrics(t))
	}
	if n <= 16 || n > 32 {
		t.Errorf("after a burst of 48: %d sessions open, want 17 to 32 (the idle ones kept)", n)
	}
	// One caller keeps going; the burst's sessions go idle and close.
	deadline := time.Now().Add(10 * time.Second)
	for ; time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err := getOnce(c, base+"/item"); err != nil {
			t.Fatal(err)
		}
		if n = activeSessions(in.metrics(t)); n <= 2 {
			break
		}
	}
	if n < 1 || n > 2 {
		t.Errorf("a sequential caller 10s after a burst: %d sessions open, want 1 or 2\n%s", n, in.Logs())
	}
}
