package masking

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestPure enforces that masking imports no protocol engine, database
// driver or other Airlock package but the protocols vocabulary: it sees
// bytes, never a connection. (net/http arrives with client_golang, for the
// metrics, and is not used here.)
func TestPure(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{
			"github.com/airlock-gw/airlock/protocols/", "github.com/airlock-gw/airlock/session",
			"github.com/airlock-gw/airlock/approvals", "github.com/airlock-gw/airlock/sqlrisk",
			"github.com/jackc/", "github.com/go-mysql-org/", "github.com/redis/", "github.com/pganalyze/",
			"github.com/pingcap/", "os/exec", "database/sql",
		} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("masking depends on %s", dep)
			}
		}
	}
}
