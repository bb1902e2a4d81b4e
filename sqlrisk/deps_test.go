package sqlrisk

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestDependencies enforces the architecture: the classifier and the policy
// are pure. They depend on no protocol engine, and none of their own
// packages imports the network stack. Transitively net is linked anyway,
// through the TiDB parser's github.com/pingcap/failpoint and zap, which is
// no path for a connection to reach the classifier. The policy links no SQL
// parser.
func TestDependencies(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	const module = "github.com/airlock-gw/airlock/"
	forbiddenModule := []string{"protocols/postgres", "protocols/mysql", "protocols/redis", "protocols/http", "session", "masking", "cmd"}
	forbiddenDirect := []string{"net", "net/http", "crypto/tls"}

	list := func(args ...string) string {
		cmd := exec.Command(goBin, append([]string{"list"}, args...)...)
		cmd.Dir = ".."
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list %v: %v\n%s", args, err, out)
		}
		return string(out)
	}

	for _, line := range strings.Split(list("-deps", "./sqlrisk/...", "./approvals/policy"), "\n") {
		for _, f := range forbiddenModule {
			if line == module+f || strings.HasPrefix(line, module+f+"/") {
				t.Errorf("sqlrisk or approvals/policy depends on %s", line)
			}
		}
	}
	// Our own packages' direct imports.
	for _, line := range strings.Split(list("-f", "{{.ImportPath}}: {{join .Imports \" \"}}", "./sqlrisk/...", "./approvals/policy"), "\n") {
		pkg, imports, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		for _, imp := range strings.Fields(imports) {
			for _, f := range forbiddenDirect {
				if imp == f {
					t.Errorf("%s imports %s directly", pkg, imp)
				}
			}
		}
	}
	for _, line := range strings.Split(list("-deps", "./approvals/policy"), "\n") {
		if strings.Contains(line, "pg_query_go") || strings.Contains(line, "pingcap") || line == module+"sqlrisk" {
			t.Errorf("approvals/policy depends on %s", line)
		}
	}
}
