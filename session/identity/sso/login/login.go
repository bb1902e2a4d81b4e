package login

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/oauth2"

	"github.com/airlock-gw/airlock/session/identity/sso"
)

// DefaultServer is the admin listener of the quickstart.
const DefaultServer = "http://127.0.0.1:19090"

// Env is what the commands read from their surroundings.
type Env struct {
	Getenv func(string) string
	Stdout io.Writer
	Stderr io.Writer
	// OpenBrowser opens a URL; nil uses $BROWSER, xdg-open or open.
	OpenBrowser func(url string) error
}

const loginUsage = `usage: airlock login [flags]

Signs you in with your company's single sign-on and writes client settings
that carry a short-lived Airlock credential (psql, mysql, redis-cli, MCP).

  --server URL      the admin listener (default $AIRLOCK_SERVER, else the last
                    server you signed in to, else ` + DefaultServer + `)
  --provider NAME   the identity provider (needed when the server offers several)
  --device          sign in with a code on another device (SSH sessions, containers)
  --no-browser      print the sign-in URL instead of opening a browser
  --no-files        do not write client settings
  --list            list your credentials (--all: everyone's, for sso admins;
                    --ended: revoked and expired ones too)
  --revoke ID       revoke one of your credentials (or anyone's, for sso admins)
`

// Login runs `airlock login ARGS` and returns the exit status: 0 done, 1
// refused or failed, 2 usage.
func Login(args []string, env Env) int {
	fs := flag.NewFlagSet("airlock login", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o struct {
		server, provider, revoke              string
		device, noBrowser, noFiles, list, all bool
		ended                                 bool
	}
	fs.StringVar(&o.server, "server", "", "")
	fs.StringVar(&o.provider, "provider", "", "")
	fs.StringVar(&o.revoke, "revoke", "", "")
	fs.BoolVar(&o.device, "device", false, "")
	fs.BoolVar(&o.noBrowser, "no-browser", false, "")
	fs.BoolVar(&o.noFiles, "no-files", false, "")
	fs.BoolVar(&o.list, "list", false, "")
	fs.BoolVar(&o.all, "all", false, "")
	fs.BoolVar(&o.ended, "ended", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(env.Stdout, loginUsage)
			return 0
		}
		fmt.Fprintf(env.Stderr, "airlock login: %v\n\n%s", err, loginUsage)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "airlock login: unexpected arguments %q\n\n%s", fs.Args(), loginUsage)
		return 2
	}
	paths, err := DefaultPaths(env.Getenv)
	if err != nil {
		return fail(env, "login", err)
	}
	st, err := readState(paths)
	if err != nil {
		return fail(env, "login", err)
	}
	c := newClient(serverURL(o.server, env.Getenv, st))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	switch {
	case o.list:
		err = list(ctx, c, st, env, o.all, o.ended)
	case o.revoke != "":
		err = revoke(ctx, c, st, env, o.revoke)
	default:
		err = login(ctx, c, paths, st, env, o.provider, o.device, o.noBrowser, o.noFiles)
	}
	if err != nil {
		return fail(env, "login", err)
	}
	return 0
}

func fail(env Env, cmd string, err error) int {
	fmt.Fprintf(env.Stderr, "airlock %s: %v\n", cmd, err)
	return 1
}

// serverURL picks the admin listener: the flag, $AIRLOCK_SERVER, the last
// server signed in to, the default.
func serverURL(flagValue string, getenv func(string) string, st stateFile) string {
	for _, s := range []string{flagValue, getenv("AIRLOCK_SERVER"), st.Last} {
		if s != "" {
			return strings.TrimSuffix(s, "/")
		}
	}
	return DefaultServer
}

func login(ctx context.Context, c *client, paths Paths, st stateFile, env Env, provider string, device, noBrowser, noFiles bool) error {
	p, err := c.provider(ctx, provider)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	client := sanitizeClient(host)
	var res *sso.LoginResult
	if device {
		res, err = c.device(ctx, p, client, env)
	} else {
		res, err = c.browser(ctx, p, client, env, noBrowser)
	}
	if err != nil {
		return err
	}
	if old, ok := st.Logins[c.server]; ok && old.CredentialID != res.CredentialID {
		// The earlier credential would otherwise stay valid, unused.
		_ = c.call(ctx, http.MethodPost, "/api/sso/logout", old.Credential, nil, nil)
	}
	st.Logins[c.server] = session{Server: c.server, Provider: res.Provider, Identity: res.Identity.Name,
		CredentialID: res.CredentialID, Credential: res.Credential, ExpiresAt: res.ExpiresAt}
	st.Last = c.server
	if err := writeState(paths, st); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Signed in as %s via %s until %s (credential %s).\n", res.Identity.Name, res.Provider,
		res.ExpiresAt.Local().Format("2006-01-02 15:04 MST"), res.CredentialID)
	if noFiles {
		return nil
	}
	w, err := Write(paths, c.server, res)
	if err != nil {
		return err
	}
	for _, f := range w.Files {
		fmt.Fprintf(env.Stdout, "  wrote %s\n", f)
	}
	if len(w.Hints) > 0 {
		fmt.Fprintln(env.Stdout, "Connect with:")
		for _, h := range w.Hints {
			fmt.Fprintf(env.Stdout, "  %s\n", h)
		}
	}
	if len(res.Connections) == 0 {
		fmt.Fprintln(env.Stdout, "No connection is open to you on this Airlock yet.")
	}
	return nil
}

// provider picks the provider named name, or the only one.
func (c *client) provider(ctx context.Context, name string) (sso.ProviderInfo, error) {
	var body struct{ Providers []sso.ProviderInfo }
	if err := c.call(ctx, http.MethodGet, "/api/sso/providers", "", nil, &body); err != nil {
		return sso.ProviderInfo{}, err
	}
	var names []string
	for _, p := range body.Providers {
		if p.Name == name || name == "" && len(body.Providers) == 1 {
			return p, nil
		}
		names = append(names, p.Name)
	}
	switch {
	case len(names) == 0:
		return sso.ProviderInfo{}, fmt.Errorf("%s offers no single sign-on", c.server)
	case name == "":
		return sso.ProviderInfo{}, fmt.Errorf("%s offers several identity providers; choose one with --provider (%s)", c.server, strings.Join(names, ", "))
	}
	return sso.ProviderInfo{}, fmt.Errorf("%s has no identity provider %q (it offers %s)", c.server, name, strings.Join(names, ", "))
}

// browser signs in through the browser and a loopback redirect.
func (c *client) browser(ctx context.Context, p sso.ProviderInfo, client string, env Env, noBrowser bool) (*sso.LoginResult, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the browser's return: %w", err)
	}
	defer ln.Close()
	verifier, state := oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	port := ln.Addr().(*net.TCPAddr).Port
	q := url.Values{"port": {strconv.Itoa(port)}, "state": {state},
		"challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "client": {client}}
	target := c.server + "/sso/" + url.PathEscape(p.Name) + "/cli?" + q.Encode()
	codes := make(chan string, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" || r.URL.Query().Get("state") != state || r.URL.Query().Get("code") == "" {
			http.Error(w, "not the sign-in this terminal started", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'")
		fmt.Fprint(w, `<!doctype html><title>Airlock</title><h1 id="done">Signed in</h1><p>You can close this tab and return to the terminal.</p>`)
		select {
		case codes <- r.URL.Query().Get("code"):
		default:
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	fmt.Fprintf(env.Stderr, "Sign in with %s in your browser:\n  %s\n", p.Label, target)
	if !noBrowser {
		open := env.OpenBrowser
		if open == nil {
			open = openBrowser(env.Getenv)
		}
		if err := open(target); err != nil {
			fmt.Fprintln(env.Stderr, "(Could not open a browser: open the URL above on this machine, or use --device.)")
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	var code string
	select {
	case code = <-codes:
	case <-ctx.Done():
		return nil, errors.New("the browser did not come back in time (use --device when the browser runs on another machine)")
	}
	var res sso.LoginResult
	if err := c.call(ctx, http.MethodPost, "/api/sso/token", "", map[string]string{"code": code, "verifier": verifier}, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// device signs in with a user code entered on another device.
func (c *client) device(ctx context.Context, p sso.ProviderInfo, client string, env Env) (*sso.LoginResult, error) {
	var start sso.DeviceStart
	if err := c.call(ctx, http.MethodPost, "/api/sso/device", "", map[string]string{"provider": p.Name, "client": client}, &start); err != nil {
		return nil, err
	}
	fmt.Fprintf(env.Stderr, "To sign in with %s, open\n  %s\nand enter the code\n  %s\n", p.Label, start.VerificationURI, start.UserCode)
	if start.VerificationURIComplete != "" {
		fmt.Fprintf(env.Stderr, "(or open %s)\n", start.VerificationURIComplete)
	}
	for {
		var res sso.LoginResult
		status, err := c.do(ctx, http.MethodPost, "/api/sso/device/token", "", map[string]string{"handle": start.Handle}, &res)
		switch {
		case err != nil:
			return nil, err
		case status == http.StatusOK:
			return &res, nil
		}
		// 202: not yet approved; the server waited, so ask again at once.
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

func list(ctx context.Context, c *client, st stateFile, env Env, all, ended bool) error {
	token, err := c.token(st, env)
	if err != nil {
		return err
	}
	q := url.Values{}
	if all {
		q.Set("all", "true")
	}
	if ended {
		q.Set("ended", "true")
	}
	var body struct{ Credentials []sso.Credential }
	if err := c.call(ctx, http.MethodGet, "/api/sso/credentials?"+q.Encode(), token, nil, &body); err != nil {
		return err
	}
	current := st.Logins[c.server].CredentialID
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\tID\tIDENTITY\tPROVIDER\tPURPOSE\tCLIENT\tEXPIRES\tSTATUS")
	for _, cr := range body.Credentials {
		mark, status := "", "active"
		if cr.ID == current {
			mark = "*"
		}
		switch {
		case cr.RevokedAt != nil:
			status = "revoked by " + cr.RevokedBy
		case !time.Now().Before(cr.ExpiresAt):
			status = "expired"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", mark, cr.ID, cr.Identity.Name, cr.Provider, cr.Purpose,
			orDash(cr.Client), cr.ExpiresAt.Local().Format("2006-01-02 15:04"), status)
	}
	return tw.Flush()
}

func revoke(ctx context.Context, c *client, st stateFile, env Env, id string) error {
	token, err := c.token(st, env)
	if err != nil {
		return err
	}
	var cr sso.Credential
	if err := c.call(ctx, http.MethodPost, "/api/sso/credentials/"+url.PathEscape(id)+"/revoke", token, nil, &cr); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Revoked %s (%s via %s).\n", cr.ID, cr.Identity.Name, cr.Provider)
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// sanitizeClient makes the host name safe to send as the client's label.
func sanitizeClient(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

// openBrowser opens a URL with $BROWSER, or the platform's opener.
func openBrowser(getenv func(string) string) func(string) error {
	return func(u string) error {
		if b := getenv("BROWSER"); b != "" {
			return exec.Command(b, u).Start()
		}
		switch runtime.GOOS {
		case "darwin":
			return exec.Command("open", u).Start()
		case "windows":
			return exec.Command("rundll32", "url.dll,FileProtocolHandler", u).Start()
		}
		return exec.Command("xdg-open", u).Start()
	}
}
