package main

import (
	"io"
	"os"

	"github.com/airlock-gw/airlock/session/identity/sso/login"
)

func runLogout(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	return login.Logout(args, login.Env{Getenv: os.Getenv, Stdout: stdout, Stderr: stderr})
}
