package approvals

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/testenv"
)

// chromiumPath finds Debian's chromium; under CI=true its absence fails.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("AIRLOCK_TEST_CHROMIUM"), "/usr/bin/chromium"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if testenv.InCI() {
		t.Fatal("chromium is not installed under CI=true (apt-get install chromium)")
	}
	t.Skip("chromium is not installed")
	return ""
}

func newChromium(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath(t)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	return ctx
}

// TestBrowserApprovesHeldCommand signs in with headless Chromium, sees the
// pending request, clicks Approve, and checks that the session holding the
// command is released with Allow. It also checks that a request made after
// the page loaded appears by live refresh, and that hostile command text
// shows as text.
func TestBrowserApprovesHeldCommand(t *testing.T) {
	ctx := newChromium(t)
	s, srv := newWebFixture(t, ModeHold)
	hostile := `DROP TABLE users; -- <img src=x onerror="document.title='pwned'">`
	held := holdReview(context.Background(), s, review(alice, "prod", hostile))
	id := held.id(t)

	err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/approvals"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), "tok-bob"),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("req-"+id)),
	)
	if err != nil {
		t.Fatalf("sign in and find the request: %v", err)
	}
	shown, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#req-"+id+" pre.command")))
	if err != nil {
		t.Fatal(err)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(shown) != hostile || strings.Contains(title, "pwned") {
		t.Fatalf("command shown as %q, title %q", shown, title)
	}
	if !held.running() {
		t.Fatal("the command was released before anyone clicked")
	}

	// A second command held after the page loaded shows up without a reload.
	second := holdReview(context.Background(), s, review(carol, "prod", "TRUNCATE orders"))
	id2 := second.id(t)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("req-"+id2))); err != nil {
		t.Fatalf("live refresh: %v", err)
	}

	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("approve-"+id)),
		chromedp.WaitVisible(chromedp.ID("flash")),
	)
	if err != nil {
		t.Fatalf("approve: %v", err)
	}
	flash, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("flash")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(flash, "Approved request "+id) {
		t.Fatalf("flash %q", flash)
	}
	dec, err := held.wait(t)
	if err != nil || dec.Action != protocols.Allow || dec.ApprovalID != id || dec.Reviewer != "bob" {
		t.Fatalf("held review returned %+v %v", dec, err)
	}
	if !second.running() {
		t.Fatal("approving one request released another")
	}

	// Deny asks for a reason: the browser will not submit an empty one.
	err = chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.ID("deny-"+id2)),
		chromedp.Click(chromedp.ID("deny-"+id2)),
		chromedp.Sleep(300*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	status, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("req-"+id2), "data-status"))
	if err != nil || status.Value != "pending" || !second.running() {
		t.Fatalf("deny without a reason went through: %q %v", status.Value, err)
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#req-"+id2+` form[action$="/deny"] input[name=reason]`), "not during business hours"),
		chromedp.Click(chromedp.ID("deny-"+id2)),
		chromedp.WaitVisible(chromedp.ID("flash")),
	)
	if err != nil {
		t.Fatalf("deny: %v", err)
	}
	dec, err = second.wait(t)
	if err != nil || dec.Action != protocols.Deny || !strings.Contains(dec.Reason, "not during business hours") {
		t.Fatalf("second review returned %+v %v", dec, err)
	}
}
