package mysql

import (
	"testing"

	"github.com/airlock-gw/airlock/session"
)

func TestTooManySessionsIsMySQLs1040And1203(t *testing.T) {
	for _, tc := range []struct {
		limit session.Limit
		code  uint16
		state string
	}{
		{session.LimitGlobal, 1040, "08004"},
		{session.LimitConnection, 1040, "08004"},
		{session.LimitIdentity, 1203, "42000"},
	} {
		err := &session.AdmitError{Err: &session.LimitError{Limit: tc.limit, Max: 3}}
		me, ok := tooManySessions(err, "dev")
		if !ok || me.Code != tc.code || me.State != tc.state {
			t.Errorf("%s: %+v, want %d (%s)", tc.limit, me, tc.code, tc.state)
		}
	}
	if _, ok := tooManySessions(&session.AdmitError{Err: session.ErrAuthFailed}, "dev"); ok {
		t.Error("a wrong token was answered as a limit")
	}
}
