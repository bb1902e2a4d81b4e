package session

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const module = "github.com/airlock-gw/airlock/"

// goList runs go list in the module's root.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), append([]string{"list"}, args...)...)
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, out)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// isEngine reports whether an import path is a protocol engine: a folder
// under protocols/ other than the neutral contract, the transport and the
// test environment.
func isEngine(path string) bool {
	rest, ok := strings.CutPrefix(path, module+"protocols/")
	if !ok {
		return false
	}
	top, _, _ := strings.Cut(rest, "/")
	switch top {
	case "engine", "transport", "testenv":
		return false
	}
	return true
}

// TestImportRules enforces the architecture's seams: the session flow and
// the other neutral packages import no engine, and none of them touches
// the network itself; the configuration package knows no engine either.
func TestImportRules(t *testing.T) {
	neutral := []string{"./session", "./session/recording", "./session/index", "./session/sqldb", "./protocols",
		"./masking", "./sqlrisk/...", "./approvals/..."}
	noEngines := append(append([]string{}, neutral...), "./cmd/airlock/config", "./protocols/engine", "./protocols/transport")
	for _, line := range goList(t, append([]string{"-deps"}, noEngines...)...) {
		if isEngine(line) {
			t.Errorf("a neutral package or the config depends on the engine %s", line)
		}
	}
	// No direct network code where meaning lives: approvals serves its
	// REST API and page, so it is left out here.
	noNet := []string{"./session", "./session/recording", "./session/index", "./session/sqldb", "./protocols",
		"./masking", "./sqlrisk/..."}
	for _, line := range goList(t, append([]string{"-f", "{{.ImportPath}}: {{join .Imports \" \"}}"}, noNet...)...) {
		pkg, imports, _ := strings.Cut(line, ": ")
		for _, imp := range strings.Fields(imports) {
			switch imp {
			case "net", "net/http", "crypto/tls", module + "protocols/transport", module + "protocols/engine":
				t.Errorf("%s imports %s", pkg, imp)
			}
		}
	}
}

func TestIsEngine(t *testing.T) {
	for path, want := range map[string]bool{
		module + "protocols/postgres": true, module + "protocols/redis/resp": true, module + "protocols/mysql/wire": true,
		module + "protocols": false, module + "protocols/engine": false, module + "protocols/transport": false,
		module + "session": false,
	} {
		if isEngine(path) != want {
			t.Errorf("isEngine(%s) = %v", path, !want)
		}
	}
}
