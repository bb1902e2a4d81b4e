package session

import (
	"context"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

// accessCache keeps a session's answer from the access grants while their
// version stays the same, so that a command costs one atomic load when no
// grant changed, and a clock read only while a grant is in force.
type accessCache struct {
	version uint64
	grant   *protocols.AccessGrant
	// noted is the grant last reported as used by this session.
	noted string
}

// accessGrant returns the access grant in force for the session's caller,
// or nil. It is called by the side that reads the client, like Check.
func (s *Session) accessGrant() *protocols.AccessGrant {
	src := s.g.opt.Grants
	if src == nil {
		return nil
	}
	c := &s.access
	if v := src.Version(); v != c.version {
		c.version = v
		c.grant = src.Lookup(s.Conn.Name, s.Info.Identity.Name, time.Now())
	}
	if c.grant == nil {
		return nil
	}
	if !time.Now().Before(c.grant.Ends) {
		// Ended between two versions: the next version will not have it.
		c.grant = nil
		return nil
	}
	return c.grant
}

// decideGranted decides cls with g's overlay and counts what the grant
// changed; a policy that cannot apply overlays decides alone, and the
// command is still marked as decided under the grant.
func (s *Session) decideGranted(cls *protocols.Classification, g *protocols.AccessGrant) protocols.Decision {
	base := s.current.Policy.Decide(s.Info.Identity, cls)
	d := base
	if gp, ok := s.current.Policy.(protocols.GrantPolicy); ok {
		d = gp.DecideGranted(s.Info.Identity, cls, g)
	}
	d.Grant = g.ID
	s.g.opt.Metrics.countGranted(s, d.Action != base.Action)
	if s.access.noted != g.ID {
		s.access.noted = g.ID
		s.g.opt.Grants.Used(g, s.Info)
		s.Log.Info("commands decided under an access grant", "grant", g.ID, "ends", g.Ends)
	}
	return d
}

// audited is dec in audit mode: recorded and counted with the policy's
// action, logged, and allowed.
func (s *Session) audited(dec protocols.Decision) protocols.Decision {
	s.Log.Info("audit mode: command allowed that the policy would "+verb(dec.Action), "decision", dec)
	dec.PolicyAction, dec.Action, dec.Audit = dec.Action, protocols.Allow, true
	dec.Reason = "audit mode, not enforced: " + dec.Reason
	return dec
}

func verb(a protocols.Action) string {
	if a == protocols.Review {
		return "hold for review"
	}
	return string(a)
}

// previewer returns how the approver previews cmd, nil when the session's
// protocol has no previewer. What a preview says is masked for the caller,
// like an error message: a server's note can quote values.
func (s *Session) previewer(cmd *protocols.Command, cls *protocols.Classification) func(context.Context, protocols.PreviewOptions) *protocols.Preview {
	pv := s.g.opt.Previewers[s.Info.Protocol]
	if pv == nil || !s.g.Inspects() {
		return nil
	}
	conn := s.Conn
	return func(ctx context.Context, o protocols.PreviewOptions) *protocols.Preview {
		p := pv.Preview(ctx, conn, cmd, cls, o)
		if p == nil || s.masker() == nil {
			return p
		}
		p.Note = string(s.Text([]byte(p.Note)))
		for i := range p.Effects {
			p.Effects[i].Note = string(s.Text([]byte(p.Effects[i].Note)))
		}
		return p
	}
}
