package httpproxy

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session"
)

type tokenAuth struct{}

func (tokenAuth) Authenticate(_ context.Context, _, secret string) (protocols.Identity, error) {
	if secret != "dev-token" {
		return protocols.Identity{}, protocols.ErrAuthFailed
	}
	return protocols.Identity{Name: "dev", Method: "token"}, nil
}

// poolsGateway is a gateway with one HTTP connection, api, for dev; open
// counts its sessions started and not yet closed, started all it started.
func poolsGateway(t *testing.T) (g *session.Gateway, open, started *atomic.Int64) {
	t.Helper()
	open, started = &atomic.Int64{}, &atomic.Int64{}
	conn := &protocols.Connection{Name: "api", Protocol: protocols.HTTP, Allow: protocols.Principals{"dev"}}
	g, err := session.New(session.Options{Auth: tokenAuth{}, Connections: map[string]*protocols.Connection{"api": conn},
		Active: func() func() {
			open.Add(1)
			started.Add(1)
			return func() { open.Add(-1) }
		}})
	if err != nil {
		t.Fatal(err)
	}
	return g, open, started
}

// take admits dev from port on 127.0.0.1 and acquires a session for it.
func take(t *testing.T, p *pools, g *session.Gateway, port string) *lease {
	s, err := g.Admit(context.Background(), session.Caller{Protocol: protocols.HTTP, Secret: "dev-token",
		Connection: "api", Peer: "127.0.0.1:" + port, Local: true})
	if err != nil {
		t.Error(err)
		return nil
	}
	l, err := p.acquire(g, s)
	if err != nil {
		t.Error(err)
		return nil
	}
	return l
}

// TestPoolsFollowConcurrency: a caller with 16 requests in flight reuses
// 16 sessions; a burst's sessions beyond max idle close when given
// back, and the rest once idle, while the session in use stays.
func TestPoolsFollowConcurrency(t *testing.T) {
	g, open, started := poolsGateway(t)
	p := newPools(300*time.Millisecond, 1000, 32)
	defer p.close()
	// 16 requests in flight at a time, 2,000 in all.
	for range 125 {
		held := make([]*lease, 16)
		for i := range held {
			held[i] = take(t, p, g, "4000")
		}
		for _, l := range held {
			p.release(l)
		}
	}
	if n := started.Load(); n != 16 {
		t.Errorf("16 requests at a time, 2,000 in all, started %d sessions, want 16", n)
	}

	burst := make([]*lease, 40)
	for i := range burst {
		burst[i] = take(t, p, g, "4001")
	}
	for _, l := range burst {
		p.release(l)
	}
	if n := open.Load(); n != 32 {
		t.Errorf("after a burst of 40: %d sessions open, want 32 (max idle)", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for ; open.Load() > 1 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		p.release(take(t, p, g, "4002"))
	}
	if n := open.Load(); n != 1 {
		t.Errorf("one caller after the burst: %d sessions open, want 1", n)
	}
	p.close()
	if n := open.Load(); n != 0 {
		t.Errorf("after close: %d sessions open", n)
	}
}
