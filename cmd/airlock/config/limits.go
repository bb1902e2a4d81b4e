package config

import "fmt"

// Limits caps the sessions Airlock runs at once; a connection's own cap is
// its max_sessions. A session past a cap is refused with its protocol's own
// "too many connections" error.
type Limits struct {
	// Sessions caps every session of the process (default: a quarter of
	// the process's open-file limit, as handshake.max_pending: a session
	// holds about three descriptors).
	Sessions int `yaml:"sessions"`
	// PerIdentity caps the sessions of one identity, over every connection
	// and frontend (default 0: no cap).
	PerIdentity int `yaml:"per_identity"`
}

func (l Limits) validate() []error {
	var errs []error
	if l.Sessions < 0 {
		errs = append(errs, fmt.Errorf("limits.sessions: must not be negative (0 sizes it from the open-file limit)"))
	}
	if l.PerIdentity < 0 {
		errs = append(errs, fmt.Errorf("limits.per_identity: must not be negative (0 is no cap)"))
	}
	return errs
}

// sessionCap is a connection's max_sessions in the engines' form
// (protocols.Connection.MaxSessions): 0 for the protocol's default when
// left out, -1 for no cap when 0.
func (cn *Connection) sessionCap() int {
	switch {
	case cn.MaxSessions == nil:
		return 0
	case *cn.MaxSessions == 0:
		return -1
	}
	return *cn.MaxSessions
}

func (cn *Connection) validateMaxSessions(path string) []error {
	if cn.MaxSessions != nil && *cn.MaxSessions < 0 {
		return []error{fmt.Errorf("%s.max_sessions: must not be negative (0 is no cap; leave it out for the default)", path)}
	}
	return nil
}
