package httpproxy

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/session"
)

func TestRefuseLimited(t *testing.T) {
	for _, tc := range []struct {
		limit  session.Limit
		status int
		kind   string
	}{
		{session.LimitGlobal, 503, `"type":"https://airlock.dev/problems/too-many-sessions"`},
		{session.LimitConnection, 503, `"type":"https://airlock.dev/problems/too-many-sessions"`},
		{session.LimitIdentity, 429, `"type":"https://airlock.dev/problems/too-many-sessions-for-identity"`},
	} {
		w := httptest.NewRecorder()
		if !refuseLimited(w, &session.AdmitError{Err: &session.LimitError{Limit: tc.limit, Max: 2}}) {
			t.Fatalf("%s: not answered", tc.limit)
		}
		if w.Code != tc.status || w.Header().Get("Retry-After") != "1" ||
			w.Header().Get("Content-Type") != "application/problem+json" || !strings.Contains(w.Body.String(), tc.kind) {
			t.Errorf("%s: %d %v %s", tc.limit, w.Code, w.Header(), w.Body)
		}
	}
	if refuseLimited(httptest.NewRecorder(), &session.AdmitError{Err: session.ErrAuthFailed}) {
		t.Error("a wrong token was answered as a limit")
	}
}
