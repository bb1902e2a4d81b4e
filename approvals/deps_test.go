package approvals

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session/sqldb"
)

// TestNoProtocolImports enforces that approvals never sees the wire: it
// imports the protocol-neutral vocabulary, never an engine, and no
// classifier. The rule catalogue (sqlrisk/rule, pure data) comes in
// through approvals/policy, which access grants' overlays are compiled by.
func TestNoProtocolImports(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == "github.com/airlock-gw/airlock/sqlrisk/rule" {
			continue
		}
		if strings.HasPrefix(p, "github.com/airlock-gw/airlock/protocols/") || strings.HasPrefix(p, "github.com/airlock-gw/airlock/sqlrisk") ||
			strings.HasPrefix(p, "github.com/airlock-gw/airlock/cmd/") || strings.Contains(p, "pg_query_go") || strings.Contains(p, "pingcap") {
			t.Errorf("approvals depends on %s", p)
		}
	}
}

// TestMount checks the handler shares a mux with the admin listener's other
// routes.
func TestMount(t *testing.T) {
	s, _ := newService(t, openTestStore(t, sqldb.Config{DSN: protocols.Secret(t.TempDir() + "/a.db")}), testConfig())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("metrics")) })
	s.Mount(mux, testAuth)
	for path, want := range map[string]int{"/metrics": 200, "/api/approvals": 401, "/approvals": 303, "/approvals/login": 200, "/api/approvals/" + newID(): 401} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != want {
			t.Errorf("%s: %d, want %d", path, rec.Code, want)
		}
	}
}

func TestSQLiteFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "airlock.db")
	openTestStore(t, sqldb.Config{DSN: protocols.Secret(path)})
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", fi.Mode(), err)
	}
	if _, err := sqldb.Open(context.Background(), sqldb.Config{DSN: ":memory:"}); err == nil {
		t.Fatal("accepted an in-memory database")
	}
}
