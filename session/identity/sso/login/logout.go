package login

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
)

const logoutUsage = `usage: airlock logout [--server URL] [--all]

Revokes the credential airlock login received and removes the client
settings it wrote. --all signs out of every server.
`

// Logout runs `airlock logout ARGS` and returns the exit status.
func Logout(args []string, env Env) int {
	fs := flag.NewFlagSet("airlock logout", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	server := fs.String("server", "", "")
	all := fs.Bool("all", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(env.Stdout, logoutUsage)
			return 0
		}
		fmt.Fprintf(env.Stderr, "airlock logout: %v\n\n%s", err, logoutUsage)
		return 2
	}
	paths, err := DefaultPaths(env.Getenv)
	if err != nil {
		return fail(env, "logout", err)
	}
	st, err := readState(paths)
	if err != nil {
		return fail(env, "logout", err)
	}
	servers := []string{serverURL(*server, env.Getenv, st)}
	if *all {
		servers = servers[:0]
		for s := range st.Logins {
			servers = append(servers, s)
		}
	}
	var errs []error
	for _, s := range servers {
		if err := logout(context.Background(), paths, &st, env, s); err != nil {
			errs = append(errs, err)
		}
	}
	if st.Last != "" {
		if _, ok := st.Logins[st.Last]; !ok {
			st.Last = ""
		}
	}
	if err := writeState(paths, st); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fail(env, "logout", err)
	}
	return 0
}

func logout(ctx context.Context, paths Paths, st *stateFile, env Env, server string) error {
	l, ok := st.Logins[server]
	if !ok {
		fmt.Fprintf(env.Stdout, "Not signed in to %s.\n", server)
	}
	if ok {
		c := newClient(server)
		err := c.call(ctx, http.MethodPost, "/api/sso/logout", l.Credential, nil, nil)
		switch {
		case err == nil:
			fmt.Fprintf(env.Stdout, "Revoked credential %s of %s.\n", l.CredentialID, l.Identity)
		case isStatus(err, http.StatusUnauthorized):
			fmt.Fprintf(env.Stdout, "Credential %s had already ended.\n", l.CredentialID)
		default:
			// Keep the login so that logout can be retried; the files go
			// regardless, below.
			fmt.Fprintf(env.Stderr, "airlock logout: could not revoke %s: %v\n", l.CredentialID, err)
			ok = false
		}
	}
	changed, err := Remove(paths, server)
	for _, f := range changed {
		fmt.Fprintf(env.Stdout, "  removed Airlock's entries from %s\n", f)
	}
	if ok {
		delete(st.Logins, server)
	}
	if err != nil {
		return err
	}
	if !ok && st.Logins[server].Credential != "" {
		return fmt.Errorf("the credential of %s is not revoked yet; run airlock logout again", server)
	}
	return nil
}
