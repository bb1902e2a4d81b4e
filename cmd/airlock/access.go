package main

import (
	"io"
	"os"

	"github.com/airlock-gw/airlock/approvals"
)

// runAccess is `airlock access …`: access requests over the admin API.
func runAccess(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	return approvals.RunAccessCLI(args, stdout, stderr, os.Getenv)
}
