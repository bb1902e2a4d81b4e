package agent

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/session"
)

func TestWriteLimited(t *testing.T) {
	for _, tc := range []struct {
		limit  session.Limit
		status int
		kind   string
	}{
		{session.LimitGlobal, 503, "problems/too-many-sessions\""},
		{session.LimitConnection, 503, "problems/too-many-sessions\""},
		{session.LimitIdentity, 429, "problems/too-many-sessions-for-identity\""},
	} {
		w := httptest.NewRecorder()
		err := &session.AdmitError{Err: &session.LimitError{Limit: tc.limit, Max: 2}}
		if !writeLimited(w, err) {
			t.Fatalf("%s: not answered", tc.limit)
		}
		if w.Code != tc.status || w.Header().Get("Retry-After") != limitRetryAfter || !strings.Contains(w.Body.String(), tc.kind) {
			t.Errorf("%s: %d %v %s", tc.limit, w.Code, w.Header(), w.Body)
		}
		if msg := toolError(err).Error(); !strings.Contains(msg, string(tc.limit)+" limit of 2 sessions") {
			t.Errorf("%s: the tool's error says %q", tc.limit, msg)
		}
	}
	if writeLimited(httptest.NewRecorder(), &session.AdmitError{Err: session.ErrAuthFailed}) {
		t.Error("a wrong token was answered as a limit")
	}
}
