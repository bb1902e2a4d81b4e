package approvals

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/airlock-gw/airlock/approvals/policy"
	"github.com/airlock-gw/airlock/protocols"
)

const accessUsage = `usage: airlock access <command> [flags]

commands:
  request --connection NAME (--role ROLE | --allow KEYS [--review KEYS]) [--for DURATION] --reason TEXT
                                  ask for elevated access for a while; KEYS are rule ids,
                                  "category.*" or risk levels, comma-separated (--allow "write.*,schema.*")
  list [--status S] [--limit N]   requests and grants you may see (default: pending and active; "all")
  show ID                         one request in full
  approve ID [--reason R]         approve a request (reviewers)
  deny ID --reason R              deny a request (reviewers)
  revoke ID [--reason R]          end a grant or withdraw a request (its caller or a reviewer)

flags for every command:
  --server URL   the admin listener (default $AIRLOCK_SERVER, else ` + DefaultServer + `)
  --json         print the API's JSON instead of text

The token (identity token or OIDC token) is read from AIRLOCK_TOKEN, never
from a flag. Exit status: 0 done, 1 refused or failed, 2 usage.
`

// RunAccessCLI runs "airlock access ARGS…" against the access API and
// returns the process exit status, as RunCLI does.
func RunAccessCLI(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	err := runAccessCLI(args, stdout, getenv)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, accessUsage)
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "airlock access: %s\n\n%s", strings.TrimPrefix(err.Error(), "usage: "), accessUsage)
		return 2
	default:
		fmt.Fprintf(stderr, "airlock access: %s\n", Visible(err.Error()))
		return 1
	}
}

type accessOpts struct {
	cliOpts
	connection, role, allow, review string
	duration                        time.Duration
}

func runAccessCLI(args []string, stdout io.Writer, getenv func(string) string) error {
	cmd, rest := splitCommand(args)
	switch cmd {
	case "":
		return fmt.Errorf("%w: no command given", errUsage)
	case "help":
		return flag.ErrHelp
	case "request", "list", "show", "approve", "deny", "revoke":
	default:
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
	o := accessOpts{cliOpts: cliOpts{server: getenv("AIRLOCK_SERVER")}}
	if o.server == "" {
		o.server = DefaultServer
	}
	fs := flag.NewFlagSet("airlock access "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.server, "server", o.server, "admin listener URL")
	fs.BoolVar(&o.asJSON, "json", false, "print JSON")
	switch cmd {
	case "request":
		fs.StringVar(&o.connection, "connection", "", "connection")
		fs.StringVar(&o.role, "role", "", "role")
		fs.StringVar(&o.allow, "allow", "", "keys to allow")
		fs.StringVar(&o.review, "review", "", "keys to review")
		fs.DurationVar(&o.duration, "for", 0, "window")
		fs.StringVar(&o.reason, "reason", "", "why")
	case "list":
		fs.StringVar(&o.status, "status", "pending,active", "status filter")
		fs.IntVar(&o.limit, "limit", 0, "at most this many")
	case "approve", "deny", "revoke":
		fs.StringVar(&o.reason, "reason", "", "why")
	}
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	want := 1
	if cmd == "list" || cmd == "request" {
		want = 0
	}
	if len(pos) != want {
		if want == 0 {
			return fmt.Errorf("%w: %s takes no arguments (got %q)", errUsage, cmd, pos)
		}
		return fmt.Errorf("%w: %s needs exactly one access request id", errUsage, cmd)
	}
	var in AccessInput
	if cmd == "request" {
		if in, err = o.input(); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
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
		return fmt.Errorf("%w: AIRLOCK_TOKEN is not set (an identity token or OIDC token)", errUsage)
	}
	c := &cliClient{base: base, token: token, http: &http.Client{Timeout: 30 * time.Second}}
	switch cmd {
	case "request":
		return c.accessCall(stdout, http.MethodPost, "/api/access", in, o.asJSON, "requested")
	case "list":
		return c.accessList(stdout, o.cliOpts)
	case "show":
		return c.accessCall(stdout, http.MethodGet, "/api/access/"+url.PathEscape(pos[0]), nil, o.asJSON, "")
	default:
		return c.accessCall(stdout, http.MethodPost, "/api/access/"+url.PathEscape(pos[0])+"/"+cmd, decisionBody{Reason: o.reason}, o.asJSON, cmd)
	}
}

// input builds the request body from the request command's flags.
func (o *accessOpts) input() (AccessInput, error) {
	in := AccessInput{Connection: o.connection, Role: o.role, Duration: Duration(o.duration), Reason: o.reason}
	switch {
	case o.connection == "":
		return in, errors.New("request needs --connection")
	case strings.TrimSpace(o.reason) == "":
		return in, errors.New("request needs --reason")
	case o.role != "" && (o.allow != "" || o.review != ""):
		return in, errors.New("give --role or --allow/--review, not both")
	case o.role == "" && o.allow == "" && o.review == "":
		return in, errors.New("request needs --role or --allow")
	}
	if o.role != "" {
		return in, nil
	}
	ov := policy.OverlayConfig{}
	for _, kv := range []struct{ keys, action string }{{o.allow, "allow"}, {o.review, "review"}} {
		for _, k := range strings.Split(kv.keys, ",") {
			if k = strings.TrimSpace(k); k == "" {
				continue
			}
			if _, err := protocols.ParseRisk(k); err == nil {
				if ov.Risks == nil {
					ov.Risks = map[string]string{}
				}
				ov.Risks[k] = kv.action
				continue
			}
			if ov.Rules == nil {
				ov.Rules = map[string]string{}
			}
			ov.Rules[k] = kv.action
		}
	}
	in.Overlay = &ov
	return in, nil
}

func (c *cliClient) accessCall(out io.Writer, method, path string, body any, asJSON bool, done string) error {
	b, err := c.call(method, path, nil, body)
	if err != nil {
		return err
	}
	if asJSON {
		_, err := out.Write(b)
		return err
	}
	var r AccessRequest
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	switch done {
	case "requested":
		_, err = fmt.Fprintf(out, "access request %s: %s on %s for %s, waiting for %d approval(s)\n", r.ID, Visible(r.What()),
			Visible(r.Connection), time.Duration(r.Duration), r.Required)
	case "approve", "deny":
		switch r.Status {
		case AccessActive:
			_, err = fmt.Fprintf(out, "approved access request %s: %s has %s on %s until %s\n", r.ID, Visible(r.Identity.Name),
				Visible(r.What()), Visible(r.Connection), r.EndsAt.UTC().Format("2006-01-02 15:04:05 UTC"))
		case AccessDenied:
			_, err = fmt.Fprintf(out, "denied access request %s (%s on %s)\n", r.ID, Visible(r.Identity.Name), Visible(r.Connection))
		default:
			_, err = fmt.Fprintf(out, "recorded your approval of access request %s: %d of %d approvals, still %s\n", r.ID,
				len(r.Approvers()), r.Required, r.Status)
		}
	case "revoke":
		_, err = fmt.Fprintf(out, "revoked access request %s (%s on %s)\n", r.ID, Visible(r.Identity.Name), Visible(r.Connection))
	default:
		printAccess(out, &r)
	}
	return err
}

func (c *cliClient) accessList(out io.Writer, o cliOpts) error {
	q := url.Values{}
	if o.status != "" && o.status != "all" {
		q.Set("status", o.status)
	}
	if o.limit > 0 {
		q.Set("limit", strconv.Itoa(o.limit))
	}
	b, err := c.call(http.MethodGet, "/api/access", q, nil)
	if err != nil {
		return err
	}
	if o.asJSON {
		_, err := out.Write(b)
		return err
	}
	var l accessListResponse
	if err := json.Unmarshal(b, &l); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	if len(l.Access) == 0 {
		_, err := fmt.Fprintln(out, "no access requests")
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tCALLER\tCONNECTION\tWINDOW\tENDS\tASKS FOR")
	for _, r := range l.Access {
		ends := "-"
		if !r.EndsAt.IsZero() {
			ends = r.EndsAt.UTC().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Status, oneLine(r.Identity.Name, 32), oneLine(r.Connection, 32),
			time.Duration(r.Duration), ends, oneLine(r.What(), 60))
	}
	return tw.Flush()
}

// printAccess writes r for a terminal, every caller-controlled value made
// visible.
func printAccess(out io.Writer, r *AccessRequest) {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Access request\t%s\n", r.ID)
	fmt.Fprintf(tw, "Status\t%s (%d of %d approvals)\n", r.Status, len(r.Approvers()), r.Required)
	fmt.Fprintf(tw, "Caller\t%s\n", Visible(r.Identity.Name))
	fmt.Fprintf(tw, "Connection\t%s\n", Visible(r.Connection))
	fmt.Fprintf(tw, "Asks for\t%s\n", Visible(r.What()))
	fmt.Fprintf(tw, "Window\t%s\n", time.Duration(r.Duration))
	fmt.Fprintf(tw, "Reason\t%s\n", Visible(r.Reason))
	fmt.Fprintf(tw, "Requested\t%s, decision by %s\n", ts(r.CreatedAt), ts(r.ExpiresAt))
	if !r.StartsAt.IsZero() {
		fmt.Fprintf(tw, "In force\t%s to %s\n", ts(r.StartsAt), ts(r.EndsAt))
	}
	if r.RevokedBy != "" {
		fmt.Fprintf(tw, "Revoked\t%s by %s: %s\n", ts(r.RevokedAt), Visible(r.RevokedBy), Visible(r.RevokeReason))
	}
	tw.Flush()
	for _, v := range r.Decisions {
		fmt.Fprintf(out, "  %s %s at %s", Visible(v.Reviewer), v.Verdict, ts(v.At))
		if v.Reason != "" {
			fmt.Fprintf(out, ": %s", Visible(v.Reason))
		}
		fmt.Fprintln(out)
	}
}
