package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/airlock-gw/airlock/approvals/policy"
	"github.com/airlock-gw/airlock/cmd/airlock/config"
	"github.com/airlock-gw/airlock/sqlrisk"
)

// runClassify is `airlock classify`: a dry run of the classifier and a
// policy for people and CI pipelines.
func runClassify(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("classify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "take the classifier settings and the policy from this configuration")
	conn := fs.String("connection", "", "use this connection's policy (needs --config)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: airlock classify [--config FILE [--connection NAME]] < commands.jsonl

Reads one JSON object per line, e.g.
  {"protocol":"postgres","command":"DELETE FROM users"}
  {"protocol":"redis","args":["FLUSHALL"]}
and writes one decision per line, in the same order:
  {"action":"review","risk":"high","rules":["dml.unbounded_delete"],"statements":[...]}`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	classifier := sqlrisk.New(sqlrisk.Config{})
	pol := policy.Default()
	if *path != "" {
		cfg, err := config.Load(*path, engines()...)
		if err != nil {
			fmt.Fprintf(stderr, "airlock classify: %s: %v\n", *path, err)
			return 2
		}
		classifier = sqlrisk.New(cfg.Classifier)
		var cn config.Connection
		if *conn != "" {
			c := cfg.Connection(*conn)
			if c == nil {
				fmt.Fprintf(stderr, "airlock classify: no connection %q in %s\n", *conn, *path)
				return 2
			}
			cn = *c
		}
		pol, err = cfg.ConnectionPolicy(&cn)
		if err != nil {
			fmt.Fprintf(stderr, "airlock classify: %v\n", err)
			return 2
		}
	} else if *conn != "" {
		fmt.Fprintln(stderr, "airlock classify: --connection needs --config")
		return 2
	}
	if err := sqlrisk.RunJSONL(stdin, stdout, classifier, pol); err != nil {
		fmt.Fprintf(stderr, "airlock classify: %v\n", err)
		return 1
	}
	return 0
}
