// Command airlock is the one Airlock binary: the gateway (serve) and the
// tools around it (check-config, classify, approvals, access, sessions,
// replay, verify, hash-token, login, logout, reload, version).
package main

import (
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/airlock-gw/airlock/approvals"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// command is one subcommand.
type command struct {
	summary string
	run     func(args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

func commands() map[string]command {
	return map[string]command{
		"serve":        {"run the gateway: airlock serve --config airlock.yaml", runServe},
		"check-config": {"validate a configuration file: airlock check-config airlock.yaml", runCheckConfig},
		"hash-token":   {"print the token_sha256 for a token read from stdin (or a new random token with --new)", runHashToken},
		"version":      {"print the version", runVersion},
		"approvals":    {"list, show, approve or deny approval requests (airlock approvals --help)", runApprovals},
		"access":       {"request, list, show, approve, deny or revoke time-bounded access (airlock access --help)", runAccess},
		"sessions":     {"list recorded sessions: airlock sessions list [--identity] [--connection] [--since]; rewrite ended ones with zstd: airlock sessions recompress DIR", runSessions},
		"replay":       {"print a recorded session as a transcript (or --json): airlock replay ID|FILE", runReplay},
		"verify":       {"check a recording's hash chain and signature: airlock verify ID|FILE", runVerify},
		"reload":       {"make the running gateway read its configuration again (as SIGHUP does): airlock reload [--server URL]", runReload},
		"classify":     {"dry-run the policy: JSON Lines commands on stdin, one decision per line on stdout", runClassify},
		"login":        {"sign in with single sign-on; writes client settings with a short-lived credential (airlock login --help)", runLogin},
		"logout":       {"revoke the credential of airlock login and remove the client settings it wrote", runLogout},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "airlock: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	return c.run(args[1:], stdin, stdout, stderr)
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "Airlock: an identity-aware gateway for databases and HTTP.")
	fmt.Fprintln(w, "\nUsage: airlock <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-13s %s\n", n, cmds[n].summary)
	}
}

func runApprovals(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	return approvals.RunCLI(args, stdout, stderr, os.Getenv)
}

func runVersion(_ []string, _ io.Reader, stdout, _ io.Writer) int {
	fmt.Fprintln(stdout, "airlock", version)
	return 0
}
