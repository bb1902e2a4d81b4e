package approvals

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// AccessWebhookEvent is the body of a json-format webhook about an access
// request.
type AccessWebhookEvent struct {
	// Event is access.requested, access.approved, access.denied,
	// access.expired, access.ended or access.revoked.
	Event  string         `json:"event"`
	At     time.Time      `json:"at"`
	Access *AccessRequest `json:"access"`
	// URL is the request's page on the admin listener.
	URL string `json:"url"`
}

// sendAccess queues event about r for every webhook; it never blocks.
func (n *notifier) sendAccess(event string, r *AccessRequest) {
	if len(n.hooks) == 0 {
		return
	}
	select {
	case <-n.drain:
		return
	default:
	}
	link := n.admin + "/access/" + r.ID
	for i, h := range n.hooks {
		var body []byte
		var err error
		if h.Format == FormatSlack {
			body, err = json.Marshal(map[string]string{"text": slackAccessText(event, r, link)})
		} else {
			body, err = json.Marshal(AccessWebhookEvent{Event: event, At: time.Now().UTC(), Access: r, URL: link})
		}
		if err != nil {
			n.log.Error("encode webhook", "webhook", i, "err", err)
			continue
		}
		select {
		case n.queue <- delivery{hook: i, event: event, body: body}:
		default:
			n.m.webhooks.WithLabelValues("dropped").Inc()
			n.log.Warn("webhook queue full; event dropped", "webhook", i, "host", n.hosts[i], "event", event, "access", r.ID)
		}
	}
}

func slackAccessText(event string, r *AccessRequest, link string) string {
	var b strings.Builder
	who := slackEscape.Replace(r.Identity.Name)
	conn := slackEscape.Replace(r.Connection)
	switch event {
	case "access.requested":
		fmt.Fprintf(&b, "Access requested: %s\n*%s* asks for %s on *%s* for %s: %s",
			r.ID, who, slackEscape.Replace(r.What()), conn, time.Duration(r.Duration), slackEscape.Replace(truncate(r.Reason, 500)))
		fmt.Fprintf(&b, "\nApprove with `airlock access approve %s` or <%s|open the request>", r.ID, link)
	case "access.approved":
		fmt.Fprintf(&b, "Access %s granted: *%s* on *%s* until %s", r.ID, who, conn, r.EndsAt.UTC().Format(time.RFC3339))
	default:
		fmt.Fprintf(&b, "Access %s of *%s* on *%s* is %s", r.ID, who, conn, r.Status)
		if r.RevokedBy != "" {
			fmt.Fprintf(&b, " (by %s)", slackEscape.Replace(r.RevokedBy))
		}
	}
	for _, v := range r.Decisions {
		fmt.Fprintf(&b, "\n• %s: %s", slackEscape.Replace(v.Reviewer), v.Verdict)
		if v.Reason != "" {
			fmt.Fprintf(&b, " (%s)", slackEscape.Replace(v.Reason))
		}
	}
	fmt.Fprintf(&b, "\n<%s|open the request>", link)
	return b.String()
}
