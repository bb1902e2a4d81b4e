package session

import (
	"errors"
	"fmt"

	"github.com/airlock-gw/airlock/protocols"
)

// Leaser is an Authenticator whose credentials can end while a session is
// open: short-lived login credentials expire and can be revoked. Once Admit
// has accepted a secret it asks for the secret's lease, and Check runs the
// lease before every command (and again when a held command is approved):
// from the moment it returns an error, every command is refused with that
// error as the reason, recorded and counted like any refusal, and Record
// (a run of a prepared statement, not decided again) returns
// ErrCredentialEnded so that the engine ends the session. A nil lease never
// ends. The lease must be cheap: it runs on every command.
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

// ErrCredentialEnded is returned by Record, wrapped with the reason, when
// the session's credential has expired past its grace or was revoked: a
// prepared statement is not run again for it and the engine ends the
// session.
var ErrCredentialEnded = errors.New("the session's credential has ended")

// credentialEnded records a refusal and returns ErrCredentialEnded when the
// session's credential has ended, after Record recorded the command.
func (s *Session) credentialEnded() error {
	if gen := s.g.opt.Live.gen.Load(); gen != s.gen {
		s.refresh(gen)
	}
	var err error
	switch {
	case s.revoked != "":
		err = errors.New(s.revoked)
	case s.lease != nil:
		err = s.lease()
	}
	if err == nil {
		return nil
	}
	if rerr := s.recorder.Decision(protocols.Decision{Action: protocols.Deny, Reason: err.Error()}); rerr != nil {
		return s.recordFailed("decision", rerr)
	}
	s.g.opt.Metrics.countCommand(s, protocols.Deny, protocols.RiskNone)
	s.Log.Info("credential ended; ending session", "reason", err.Error())
	return fmt.Errorf("%w: %w", ErrCredentialEnded, err)
}
