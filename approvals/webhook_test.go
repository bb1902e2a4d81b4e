package approvals

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session/sqldb"
)

// receiver records webhook posts; it fails the first failFirst of them.
type receiver struct {
	srv       *httptest.Server
	failFirst int32
	failCode  int
	calls     atomic.Int32
	mu        sync.Mutex
	got       []received
	arrived   chan struct{}
}

type received struct {
	body   []byte
	header http.Header
}

func newReceiver(t *testing.T, failFirst int32, failCode int) *receiver {
	r := &receiver{failFirst: failFirst, failCode: failCode, arrived: make(chan struct{}, 64)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n := r.calls.Add(1)
		b, _ := io.ReadAll(req.Body)
		if n <= r.failFirst {
			w.WriteHeader(r.failCode)
			return
		}
		r.mu.Lock()
		r.got = append(r.got, received{body: b, header: req.Header.Clone()})
		r.mu.Unlock()
		r.arrived <- struct{}{}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) wait(t *testing.T, n int) []received {
	t.Helper()
	for {
		r.mu.Lock()
		if len(r.got) >= n {
			out := append([]received(nil), r.got...)
			r.mu.Unlock()
			return out
		}
		r.mu.Unlock()
		select {
		case <-r.arrived:
		case <-time.After(20 * time.Second):
			t.Fatalf("%d of %d webhooks arrived", len(r.got), n)
		}
	}
}

func fastRetry(o *Options) {
	o.WebhookRetry = Backoff{Attempts: 4, Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}
}

func TestWebhooks(t *testing.T) {
	ctx := context.Background()

	t.Run("json with retries and signature", func(t *testing.T) {
		rcv := newReceiver(t, 2, http.StatusBadGateway) // fails twice, then succeeds
		cfg := testConfig()
		cfg.Webhooks = []WebhookConfig{{URL: protocols.Secret(rcv.srv.URL + "/hook"), Secret: "s3cret"}}
		s, _ := newService(t, openTestStore(t, sqldb.Config{DSN: protocols.Secret(t.TempDir() + "/a.db")}), cfg, fastRetry)
		h := holdReview(ctx, s, review(alice, "prod", "DROP TABLE users"))
		id := h.id(t)
		got := rcv.wait(t, 1)
		if rcv.calls.Load() != 3 {
			t.Fatalf("delivered after %d calls, want 3", rcv.calls.Load())
		}
		var ev WebhookEvent
		if err := json.Unmarshal(got[0].body, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Event != "approval.requested" || ev.Request.ID != id || ev.Request.Command != "DROP TABLE users" ||
			ev.URL != "https://airlock.example:19090/approvals/"+id || got[0].header.Get("X-Airlock-Event") != "approval.requested" {
			t.Fatalf("event %+v", ev)
		}
		mac := hmac.New(sha256.New, []byte("s3cret"))
		mac.Write(got[0].body)
		if sig := got[0].header.Get("X-Airlock-Signature"); sig != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
			t.Fatalf("signature %q", sig)
		}
		// The session was notified at once, before any delivery succeeded:
		// the hold never waits for the receiver.
		if _, err := s.Decide(ctx, bob, id, Approve, "fine"); err != nil {
			t.Fatal(err)
		}
		h.wait(t)
		got = rcv.wait(t, 2)
		json.Unmarshal(got[1].body, &ev)
		if ev.Event != "approval.approved" || ev.Request.Status != StatusApproved || len(ev.Request.Decisions) != 1 {
			t.Fatalf("decision event %+v", ev)
		}
		// The receiver has the body before the sender has its answer, and
		// the sender counts a delivery only then.
		delivered := s.m.webhooks.WithLabelValues("delivered")
		for deadline := time.Now().Add(10 * time.Second); metricValue(t, delivered) < 2 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		if n := metricValue(t, delivered); n != 2 {
			t.Fatalf("delivered %v", n)
		}
	})

	t.Run("slack format", func(t *testing.T) {
		rcv := newReceiver(t, 0, 0)
		cfg := testConfig()
		cfg.Mode = ModeRetry
		cfg.Webhooks = []WebhookConfig{{URL: protocols.Secret(rcv.srv.URL), Format: FormatSlack}}
		s, _ := newService(t, openTestStore(t, sqldb.Config{DSN: protocols.Secret(t.TempDir() + "/a.db")}), cfg, fastRetry)
		d, _ := s.Review(ctx, review(alice, "prod", "DELETE FROM t WHERE a < 1 -- <!channel> ```"), nil)
		got := rcv.wait(t, 1)
		var m map[string]string
		if err := json.Unmarshal(got[0].body, &m); err != nil || len(m) != 1 {
			t.Fatalf("slack body %s", got[0].body)
		}
		text := m["text"]
		if !strings.Contains(text, d.ApprovalID) || !strings.Contains(text, "&lt;!channel&gt;") || strings.Contains(text, "<!channel>") ||
			!strings.Contains(text, "airlock approvals approve "+d.ApprovalID) || strings.Count(text, "```") != 2 {
			t.Fatalf("slack text %q", text)
		}
		s.Decide(ctx, carol, d.ApprovalID, Reject, "use <b>a</b> ticket")
		got = rcv.wait(t, 2)
		json.Unmarshal(got[1].body, &m)
		if !strings.Contains(m["text"], "denied") || !strings.Contains(m["text"], "&lt;b&gt;") {
			t.Fatalf("slack decision %q", m["text"])
		}
	})

	t.Run("bounded retries and permanent failures", func(t *testing.T) {
		down := newReceiver(t, 1000, http.StatusServiceUnavailable)
		gone := newReceiver(t, 1000, http.StatusNotFound)
		cfg := testConfig()
		cfg.Mode = ModeRetry
		cfg.Webhooks = []WebhookConfig{{URL: protocols.Secret(down.srv.URL)}, {URL: protocols.Secret(gone.srv.URL)}}
		s, _ := newService(t, openTestStore(t, sqldb.Config{DSN: protocols.Secret(t.TempDir() + "/a.db")}), cfg, fastRetry)
		s.Review(ctx, review(alice, "prod", "DROP TABLE x"), nil)
		deadline := time.Now().Add(20 * time.Second)
		for metricValue(t, s.m.webhooks.WithLabelValues("failed")) < 2 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if down.calls.Load() != 4 || gone.calls.Load() != 1 {
			t.Fatalf("503 receiver called %d times (want 4), 404 receiver %d (want 1)", down.calls.Load(), gone.calls.Load())
		}
	})

	t.Run("never blocks the session", func(t *testing.T) {
		block := make(chan struct{})
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
		defer slow.Close()
		cfg := testConfig()
		cfg.Mode = ModeRetry
		cfg.Webhooks = []WebhookConfig{{URL: protocols.Secret(slow.URL)}}
		s, _ := newService(t, openTestStore(t, sqldb.Config{DSN: protocols.Secret(t.TempDir() + "/a.db")}), cfg, fastRetry)
		for i := range webhookQueue + webhookWorkers + 10 {
			d, err := s.Review(ctx, review(alice, "prod", "DROP TABLE t"+strings.Repeat("x", i)), nil)
			if err != nil || d.ApprovalID == "" {
				t.Fatalf("%+v %v", d, err)
			}
		}
		if n := metricValue(t, s.m.webhooks.WithLabelValues("dropped")); n == 0 {
			t.Fatal("a full queue dropped nothing")
		}
		close(block) // let the queue drain before the server goes away
		s.Close()
	})
}

func TestWebhookURLNeverLogged(t *testing.T) {
	var logs strings.Builder
	n := newNotifier([]WebhookConfig{{URL: "http://127.0.0.1:1/services/T000/B000/SECRETPATH"}}, nil,
		Backoff{Attempts: 2, Initial: time.Millisecond}, "http://x", slogTo(&logs), newMetrics(nil))
	var wg sync.WaitGroup
	n.start(&wg)
	n.send(eventRequested, &Request{ID: newID()})
	n.close(5 * time.Second)
	wg.Wait()
	if !strings.Contains(logs.String(), "webhook not delivered") || strings.Contains(logs.String(), "SECRETPATH") {
		t.Fatalf("logs: %s", logs.String())
	}
}
