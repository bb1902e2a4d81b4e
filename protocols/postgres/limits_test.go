package postgres

import (
	"errors"
	"testing"

	"github.com/airlock-gw/airlock/session"
)

func TestTooManySessionsIsPostgreSQLs53300(t *testing.T) {
	for _, tc := range []struct {
		limit session.Limit
		want  string
	}{
		{session.LimitGlobal, "sorry, too many clients already"},
		{session.LimitIdentity, `too many connections for role "dev"`},
		{session.LimitConnection, `too many connections for database "prod"`},
	} {
		err := &session.AdmitError{Err: &session.LimitError{Limit: tc.limit, Max: 7}, Identity: "dev", Connection: "prod"}
		pe, ok := tooManySessions(err, "dev", "prod")
		if !ok || pe.Severity != "FATAL" || pe.Code != "53300" || pe.Message != tc.want || pe.Detail == "" {
			t.Errorf("%s: %+v", tc.limit, pe)
		}
	}
	if _, ok := tooManySessions(&session.AdmitError{Err: session.ErrAuthFailed}, "dev", "prod"); ok {
		t.Error("a wrong token was answered as a limit")
	}
	if _, ok := tooManySessions(errors.New("other"), "dev", "prod"); ok {
		t.Error("another error was answered as a limit")
	}
}
