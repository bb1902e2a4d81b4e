package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols/testenv"
)

// conformanceDir is where the official MCP conformance suite is installed,
// with the Node.js it needs (22 or later):
//
//	npm install --prefix /opt/mcp-conformance node@22 @modelcontextprotocol/conformance@0.1.16
func conformanceDir() string {
	if d := os.Getenv("AIRLOCK_MCP_CONFORMANCE"); d != "" {
		return d
	}
	return "/opt/mcp-conformance"
}

// conformanceScenarios are the suite's server scenarios that apply to
// Airlock's MCP endpoint; docs/agents.md says why the others do not.
var conformanceScenarios = []string{
	"server-initialize", "ping", "logging-set-level", "tools-list", "resources-list", "prompts-list", "dns-rebinding-protection", "server-sse-multiple-streams",
}

// TestMCPConformance runs the official MCP conformance suite against
// /mcp. The suite cannot send a bearer token, so it reaches Airlock through
// a proxy that adds one, as a configured MCP client would; the proxy keeps
// the Host header, which the DNS rebinding scenario varies.
func TestMCPConformance(t *testing.T) {
	dir := conformanceDir()
	bin := filepath.Join(dir, "node_modules", ".bin", "conformance")
	if _, err := os.Stat(bin); err != nil {
		if testenv.InCI() {
			t.Fatalf("the MCP conformance suite is not installed in %s under CI=true: %v", dir, err)
		}
		t.Skipf("the MCP conformance suite is not installed in %s: %v", dir, err)
	}
	db := testenv.PostgresDB(t)
	a := startAgents(t, db, "")
	target, _ := url.Parse(a.base)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
			r.Out.Header.Set("Authorization", "Bearer "+agentToken)
		},
		FlushInterval: -1,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	endpoint := "http://localhost:" + strings.TrimPrefix(ln.Addr().String(), "127.0.0.1:") + "/mcp"
	for _, sc := range conformanceScenarios {
		t.Run(sc, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "server", "--url", endpoint, "--scenario", sc, "-o", t.TempDir())
			cmd.Env = append(os.Environ(), "PATH="+filepath.Join(dir, "node_modules", ".bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
			out, err := cmd.CombinedOutput()
			t.Logf("%s", out)
			if err != nil {
				t.Fatalf("scenario %s failed: %v", sc, err)
			}
		})
	}
}
