package approvals

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// DefaultServer is the admin listener the CLI talks to by default.
const DefaultServer = "http://127.0.0.1:19090"

const cliUsage = `usage: airlock approvals <command> [flags]

commands:
  list [--status S] [--limit N]   requests you may see (default status pending; "all" for every status)
  show ID                         one request in full
  approve ID [--reason R]         approve a request
  deny ID --reason R              deny a request

flags for every command:
  --server URL   the admin listener (default $AIRLOCK_SERVER, else ` + DefaultServer + `)
  --json         print the API's JSON instead of text

The token (identity token or OIDC token) is read from AIRLOCK_TOKEN, never
from a flag, so that it stays out of shell history and process listings.
`

// errUsage marks mistakes on the command line (exit status 2).
var errUsage = errors.New("usage")

// RunCLI runs "airlock approvals ARGS…" against the approvals API and
// returns the process exit status: 0 on success, 1 when the server refused
// or failed, 2 for a usage or configuration mistake.
func RunCLI(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	err := runCLI(args, stdout, getenv)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, cliUsage)
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "airlock approvals: %s\n\n%s", strings.TrimPrefix(err.Error(), "usage: "), cliUsage)
		return 2
	default:
		fmt.Fprintf(stderr, "airlock approvals: %s\n", Visible(err.Error()))
		return 1
	}
}

type cliOpts struct {
	server    string
	asJSON    bool
	status    string
	limit     int
	reason    string
	reasonSet bool
}

func runCLI(args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no command given", errUsage)
	}
	cmd, rest := splitCommand(args)
	switch cmd {
	case "":
		return fmt.Errorf("%w: no command given", errUsage)
	case "help":
		return flag.ErrHelp
	case "list", "show", "approve", "deny":
	default:
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
	o := cliOpts{server: getenv("AIRLOCK_SERVER")}
	if o.server == "" {
		o.server = DefaultServer
	}
	fs := flag.NewFlagSet("airlock approvals "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.server, "server", o.server, "admin listener URL")
	fs.BoolVar(&o.asJSON, "json", false, "print JSON")
	switch cmd {
	case "list":
		fs.StringVar(&o.status, "status", "pending", "status filter")
		fs.IntVar(&o.limit, "limit", 0, "at most this many")
	case "approve", "deny":
		fs.Func("reason", "why", func(s string) error { o.reason, o.reasonSet = s, true; return nil })
	}
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	want := 1
	if cmd == "list" {
		want = 0
	}
	if len(pos) != want {
		if want == 0 {
			return fmt.Errorf("%w: list takes no arguments (got %q)", errUsage, pos)
		}
		return fmt.Errorf("%w: %s needs exactly one request id", errUsage, cmd)
	}
	if cmd == "deny" && strings.TrimSpace(o.reason) == "" {
		return fmt.Errorf("%w: deny needs --reason", errUsage)
	}
	base, err := checkServer(o.server)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	token := strings.TrimSpace(getenv("AIRLOCK_TOKEN"))
	if token == "" {
		return fmt.Errorf("%w: AIRLOCK_TOKEN is not set (an identity token or OIDC token of a reviewer)", errUsage)
	}
	c := &cliClient{base: base, token: token, http: &http.Client{Timeout: 30 * time.Second}}
	switch cmd {
	case "list":
		return c.list(stdout, o)
	case "show":
		return c.show(stdout, pos[0], o)
	default:
		return c.decide(stdout, cmd, pos[0], o)
	}
}

// splitCommand finds the command word, letting the common flags come before
// it ("--server URL --json list").
func splitCommand(args []string) (string, []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return "", nil
		case a == "-server" || a == "--server":
			i++ // its value
		case strings.HasPrefix(a, "-"):
		default:
			rest := append(append([]string{}, args[:i]...), args[i+1:]...)
			return a, rest
		}
	}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		return "help", nil
	}
	return "", nil
}

// parseInterspersed lets flags follow positional arguments ("approve ID
// --reason R"), which the flag package alone does not.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// checkServer accepts http(s) URLs, refusing to send a token in clear text
// anywhere but loopback.
func checkServer(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--server %q is not an http or https URL", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("--server must not carry credentials, a query or a fragment")
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("refusing to send a token over plain http to %s; use https", u.Host)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type cliClient struct {
	base  *url.URL
	token string
	http  *http.Client
}

// call sends one API request and returns the body of a 2xx answer.
func (c *cliClient) call(method, path string, query url.Values, body any) ([]byte, error) {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return nil, fmt.Errorf("reach %s: %w", c.base.Host, ue.Err)
		}
		return nil, fmt.Errorf("reach %s: %w", c.base.Host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e apiError
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("%s (HTTP %d)", e.Error, resp.StatusCode)
		}
		return nil, fmt.Errorf("server answered %s", resp.Status)
	}
	return b, nil
}

func (c *cliClient) list(out io.Writer, o cliOpts) error {
	q := url.Values{}
	if o.status != "" && o.status != "all" {
		q.Set("status", o.status)
	}
	if o.limit > 0 {
		q.Set("limit", strconv.Itoa(o.limit))
	}
	b, err := c.call(http.MethodGet, "/api/approvals", q, nil)
	if err != nil {
		return err
	}
	if o.asJSON {
		_, err := out.Write(b)
		return err
	}
	var l listResponse
	if err := json.Unmarshal(b, &l); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	if len(l.Approvals) == 0 {
		what := o.status + " "
		if o.status == "all" || o.status == "" {
			what = ""
		}
		_, err := fmt.Fprintf(out, "no %sapproval requests\n", what)
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tCALLER\tCONNECTION\tRISK\tCREATED\tCOMMAND")
	for _, r := range l.Approvals {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Status, oneLine(r.Identity.Name, 32),
			oneLine(r.Connection, 32), r.Risk, r.CreatedAt.UTC().Format("2006-01-02 15:04:05"), oneLine(r.Command, 60))
	}
	return tw.Flush()
}

func (c *cliClient) show(out io.Writer, id string, o cliOpts) error {
	b, err := c.call(http.MethodGet, "/api/approvals/"+url.PathEscape(id), nil, nil)
	if err != nil {
		return err
	}
	if o.asJSON {
		_, err := out.Write(b)
		return err
	}
	var r Request
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	printRequest(out, &r)
	return nil
}

func (c *cliClient) decide(out io.Writer, cmd, id string, o cliOpts) error {
	b, err := c.call(http.MethodPost, "/api/approvals/"+url.PathEscape(id)+"/"+cmd, nil, decisionBody{Reason: o.reason})
	if err != nil {
		return err
	}
	if o.asJSON {
		_, err := out.Write(b)
		return err
	}
	var r Request
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	switch r.Status {
	case StatusApproved:
		_, err = fmt.Fprintf(out, "approved request %s (%s on %s): the command may run once\n", r.ID, Visible(r.Identity.Name), Visible(r.Connection))
	case StatusDenied:
		_, err = fmt.Fprintf(out, "denied request %s (%s on %s)\n", r.ID, Visible(r.Identity.Name), Visible(r.Connection))
	default:
		_, err = fmt.Fprintf(out, "recorded your approval of request %s: %d of %d approvals, still %s\n", r.ID, len(r.Approvers()), r.Required, r.Status)
	}
	return err
}

// printRequest writes r for a terminal. Every value a caller could control
// goes through Visible so that escape sequences cannot rewrite the screen.
func printRequest(out io.Writer, r *Request) {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Request\t%s\n", r.ID)
	fmt.Fprintf(tw, "Status\t%s (%d of %d approvals, %s mode)\n", r.Status, len(r.Approvers()), r.Required, r.Mode)
	who := Visible(r.Identity.Name)
	if len(r.Identity.Groups) > 0 {
		who += " (groups " + Visible(strings.Join(r.Identity.Groups, ", ")) + ")"
	}
	if r.Identity.Method != "" {
		who += " via " + Visible(r.Identity.Method)
	}
	fmt.Fprintf(tw, "Caller\t%s\n", who)
	fmt.Fprintf(tw, "Connection\t%s (%s), client %s, session %s, replica %s\n", Visible(r.Connection), Visible(string(r.Protocol)),
		Visible(r.ClientAddr), Visible(r.SessionID), Visible(r.Replica))
	fmt.Fprintf(tw, "Risk\t%s: %s\n", r.Risk, Visible(strings.Join(r.Rules, ", ")))
	fmt.Fprintf(tw, "Requested\t%s, expires %s\n", ts(r.CreatedAt), ts(r.ExpiresAt))
	if !r.DecidedAt.IsZero() {
		fmt.Fprintf(tw, "Decided\t%s\n", ts(r.DecidedAt))
	}
	if !r.ValidUntil.IsZero() && r.Status == StatusApproved {
		fmt.Fprintf(tw, "Valid until\t%s\n", ts(r.ValidUntil))
	}
	if !r.ConsumedAt.IsZero() {
		fmt.Fprintf(tw, "Ran\t%s\n", ts(r.ConsumedAt))
	}
	fmt.Fprintf(tw, "SHA-256\t%s\n", r.CommandSHA256)
	tw.Flush()
	if len(r.Decisions) > 0 {
		fmt.Fprintln(out, "Decisions:")
		for _, v := range r.Decisions {
			fmt.Fprintf(out, "  %s %s at %s", Visible(v.Reviewer), v.Verdict, ts(v.At))
			if v.Reason != "" {
				fmt.Fprintf(out, ": %s", Visible(v.Reason))
			}
			fmt.Fprintln(out)
		}
	}
	if HasHidden(r.Command) {
		fmt.Fprintln(out, "Warning: the command contains invisible or control characters, shown as \\u{…}.")
	}
	fmt.Fprintln(out, "Command:")
	for _, line := range strings.Split(Visible(r.Command), "\n") {
		fmt.Fprintf(out, "  %s\n", line)
	}
	printPreview(out, r.Preview)
}
