package session

import "github.com/airlock-gw/airlock/protocols"

// Leaser is an Authenticator whose credentials can end while a session is
// open: short-lived login credentials expire and can be revoked. Once Admit
// has accepted a secret it asks for the secret's lease, and Check runs the
// lease before every command (and again when a held command is approved):
// from the moment it returns an error, every command is refused with that
// error as the reason, recorded and counted like any refusal. A nil lease
// never ends. The lease must be cheap: it runs on every command.
type Leaser interface {
	Lease(secret string) (valid func() error)
}

// outlived refuses dec when the session's credential has ended.
func (s *Session) outlived(dec protocols.Decision) protocols.Decision {
	if s.lease == nil || dec.Action == protocols.Deny {
		return dec
	}
	if err := s.lease(); err != nil {
		return protocols.Decision{Action: protocols.Deny, Risk: dec.Risk, Rules: dec.Rules,
			Reason: err.Error(), ApprovalID: dec.ApprovalID}
	}
	return dec
}
