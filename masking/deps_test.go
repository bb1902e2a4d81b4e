package masking

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestPure enforces the import rules. The core imports no protocol engine,
// database driver or other Airlock package but the protocols vocabulary:
// it sees bytes, never a connection. Nor does it import a dialect (the
// packages under masking/, such as pgcodec): dialects import the core, and
// a connection's dialect is handed to New. The dialects themselves import
// no engine or driver either. (net/http arrives with client_golang, for
// the metrics, and is not used here.)
func TestPure(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	banned := []string{
		"github.com/airlock-gw/airlock/protocols/", "github.com/airlock-gw/airlock/session",
		"github.com/airlock-gw/airlock/approvals", "github.com/airlock-gw/airlock/sqlrisk",
		"github.com/jackc/", "github.com/go-mysql-org/", "github.com/redis/", "github.com/pganalyze/",
		"github.com/pingcap/", "os/exec", "database/sql",
	}
	for pkg, extra := range map[string][]string{
		".":            {"github.com/airlock-gw/airlock/masking/"},
		"./pgcodec":    nil,
		"./mysqlcodec": nil,
	} {
		out, err := exec.Command(goTool, "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range append(extra, banned...) {
				if strings.HasPrefix(dep, b) {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}
