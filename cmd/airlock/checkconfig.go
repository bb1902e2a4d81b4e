package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/airlock-gw/airlock/cmd/airlock/config"
	"github.com/airlock-gw/airlock/session/identity"
)

func runCheckConfig(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (or give it as the argument)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" && fs.NArg() == 1 {
		*path = fs.Arg(0)
	}
	if *path == "" {
		fmt.Fprintln(stderr, "usage: airlock check-config FILE")
		return 2
	}
	cfg, notes, err := config.LoadForTools(*path, engines()...)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid configuration:\n", *path)
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "  %s\n", line)
		}
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d connections, %d identities)\n", *path, len(cfg.Connections), len(cfg.Identities))
	for _, n := range notes {
		fmt.Fprintf(stdout, "  not checked: %s\n", n)
	}
	return 0
}

// printNotes reports what a command could not check without the secrets
// it runs without.
func printNotes(w io.Writer, cmd string, notes []string) {
	for _, n := range notes {
		fmt.Fprintf(w, "%s: note: %s\n", cmd, n)
	}
}

func runHashToken(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hash-token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	gen := fs.Bool("new", false, "generate a new random token and print it with its hash")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *gen {
		tok, err := identity.GenerateToken()
		if err != nil {
			fmt.Fprintln(stderr, "airlock hash-token:", err)
			return 1
		}
		fmt.Fprintf(stdout, "token:        %s\ntoken_sha256: %s\n", tok, identity.HashToken(tok))
		return 0
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintln(stderr, "airlock hash-token: read token:", err)
		return 1
	}
	tok := strings.TrimRight(line, "\r\n")
	if tok == "" {
		fmt.Fprintln(stderr, `airlock hash-token: give the token on stdin, e.g. echo "$TOKEN" | airlock hash-token`)
		return 2
	}
	fmt.Fprintln(stdout, identity.HashToken(tok))
	return 0
}
