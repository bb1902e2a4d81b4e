package approvals

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Backoff bounds the retries of one webhook delivery: up to Attempts tries,
// waiting Initial, then twice as long each time up to Max, with jitter.
type Backoff struct {
	Attempts int
	Initial  time.Duration
	Max      time.Duration
}

func (b Backoff) withDefaults() Backoff {
	if b.Attempts <= 0 {
		b.Attempts = 6
	}
	if b.Initial <= 0 {
		b.Initial = time.Second
	}
	if b.Max <= 0 {
		b.Max = time.Minute
	}
	return b
}

const (
	eventRequested = "approval.requested"
	webhookWorkers = 4
	webhookQueue   = 256
)

func eventName(decision string) string { return "approval." + decision }

// WebhookEvent is the body of a json-format webhook. The request carries
// its blast-radius preview, when one was made.
type WebhookEvent struct {
	// Event is approval.requested, approval.approved, approval.denied,
	// approval.expired or approval.cancelled.
	Event   string    `json:"event"`
	At      time.Time `json:"at"`
	Request *Request  `json:"request"`
	// URL is the request's page on the admin listener.
	URL string `json:"url"`
}

type delivery struct {
	hook  int
	event string
	body  []byte
}

// notifier posts events to the configured webhooks from its own goroutines:
// a held session never waits for a receiver.
type notifier struct {
	hooks  []WebhookConfig
	hosts  []string // for logs: a webhook URL is a credential
	client *http.Client
	retry  Backoff
	admin  string
	log    *slog.Logger
	m      *metrics

	queue  chan delivery
	drain  chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
}

func newNotifier(hooks []WebhookConfig, client *http.Client, retry Backoff, admin string, log *slog.Logger, m *metrics) *notifier {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	n := &notifier{hooks: hooks, client: client, retry: retry.withDefaults(), admin: admin, log: log, m: m,
		queue: make(chan delivery, webhookQueue), drain: make(chan struct{})}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	for _, h := range hooks {
		host := "webhook"
		if u, err := url.Parse(h.URL.Reveal()); err == nil {
			host = u.Host
		}
		n.hosts = append(n.hosts, host)
	}
	return n
}

func (n *notifier) start(wg *sync.WaitGroup) {
	if len(n.hooks) == 0 {
		return
	}
	for range webhookWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.work()
		}()
	}
}

func (n *notifier) work() {
	for {
		select {
		case d := <-n.queue:
			n.deliver(d)
		case <-n.drain:
			for {
				select {
				case d := <-n.queue:
					n.deliver(d)
				default:
					return
				}
			}
		}
	}
}

// close stops taking events and gives queued ones until timeout.
func (n *notifier) close(timeout time.Duration) {
	n.once.Do(func() {
		close(n.drain)
		time.AfterFunc(timeout, n.cancel)
	})
}

// send queues event about r for every webhook; it never blocks.
func (n *notifier) send(event string, r *Request) {
	if len(n.hooks) == 0 {
		return
	}
	select {
	case <-n.drain:
		return
	default:
	}
	link := n.admin + "/approvals/" + r.ID
	for i, h := range n.hooks {
		var body []byte
		var err error
		if h.Format == FormatSlack {
			body, err = json.Marshal(map[string]string{"text": slackText(event, r, link)})
		} else {
			body, err = json.Marshal(WebhookEvent{Event: event, At: time.Now().UTC(), Request: r, URL: link})
		}
		if err != nil {
			n.log.Error("encode webhook", "webhook", i, "err", err)
			continue
		}
		select {
		case n.queue <- delivery{hook: i, event: event, body: body}:
		default:
			n.m.webhooks.WithLabelValues("dropped").Inc()
			n.log.Warn("webhook queue full; event dropped", "webhook", i, "host", n.hosts[i], "event", event, "approval", r.ID)
		}
	}
}

func (n *notifier) deliver(d delivery) {
	delay := n.retry.Initial
	for attempt := 1; ; attempt++ {
		status, retryAfter, err := n.post(d)
		if err == nil && status/100 == 2 {
			n.m.webhooks.WithLabelValues("delivered").Inc()
			return
		}
		permanent := err == nil && status/100 == 4 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests
		if permanent || attempt >= n.retry.Attempts || n.ctx.Err() != nil {
			n.m.webhooks.WithLabelValues("failed").Inc()
			n.log.Error("webhook not delivered", "webhook", d.hook, "host", n.hosts[d.hook], "event", d.event,
				"attempts", attempt, "status", status, "err", err)
			return
		}
		wait := max(delay, min(retryAfter, n.retry.Max))
		// ±20% jitter keeps replicas from retrying in lockstep.
		wait = time.Duration(float64(wait) * (0.8 + 0.4*rand.Float64()))
		n.log.Warn("webhook failed; retrying", "webhook", d.hook, "host", n.hosts[d.hook], "event", d.event,
			"attempt", attempt, "status", status, "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-n.ctx.Done():
			t.Stop()
		case <-t.C:
		}
		delay = min(delay*2, n.retry.Max)
	}
}

// post sends one attempt. Its error never carries the URL.
func (n *notifier) post(d delivery) (int, time.Duration, error) {
	h := n.hooks[d.hook]
	req, err := http.NewRequestWithContext(n.ctx, http.MethodPost, h.URL.Reveal(), bytes.NewReader(d.body))
	if err != nil {
		return 0, 0, errors.New("bad webhook URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "airlock-approvals")
	req.Header.Set("X-Airlock-Event", d.event)
	if h.Secret != "" {
		mac := hmac.New(sha256.New, []byte(h.Secret.Reveal()))
		mac.Write(d.body)
		req.Header.Set("X-Airlock-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	resp, err := n.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // *url.Error prints the URL
		}
		return 0, 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	var after time.Duration
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		after = time.Duration(s) * time.Second
	}
	return resp.StatusCode, after, nil
}

// slackEscape escapes the three characters Slack's mrkdwn treats as markup
// (links, mentions); everything else shows as written.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

const slackCommandMax = 2000

func slackText(event string, r *Request, link string) string {
	var b strings.Builder
	who := slackEscape.Replace(r.Identity.Name)
	switch event {
	case eventRequested:
		fmt.Fprintf(&b, "Approval required: request %s\n*%s* on *%s* (%s), risk *%s*",
			r.ID, who, slackEscape.Replace(r.Connection), r.Protocol, r.Risk)
		if len(r.Rules) > 0 {
			fmt.Fprintf(&b, " (%s)", slackEscape.Replace(strings.Join(r.Rules, ", ")))
		}
		cmd := r.Command
		cmd = truncate(cmd, slackCommandMax)
		// Backticks cannot close the code block early.
		cmd = strings.ReplaceAll(cmd, "```", "`\u200b``")
		fmt.Fprintf(&b, "\n```%s```", slackEscape.Replace(cmd))
		if r.Preview != nil {
			for _, line := range r.Preview.Lines() {
				fmt.Fprintf(&b, "\n%s", slackEscape.Replace(line))
			}
		}
		fmt.Fprintf(&b, "\nApprove with `airlock approvals approve %s` or <%s|open the request>", r.ID, link)
	default:
		fmt.Fprintf(&b, "Request %s by *%s* on *%s* is %s", r.ID, who, slackEscape.Replace(r.Connection), r.Status)
		for _, v := range r.Decisions {
			fmt.Fprintf(&b, "\n• %s: %s", slackEscape.Replace(v.Reviewer), v.Verdict)
			if v.Reason != "" {
				fmt.Fprintf(&b, " (%s)", slackEscape.Replace(v.Reason))
			}
		}
		fmt.Fprintf(&b, "\n<%s|open the request>", link)
	}
	return b.String()
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
