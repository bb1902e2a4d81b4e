package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/airlock-gw/airlock/approvals/policy"
	"github.com/airlock-gw/airlock/cmd/airlock/config"
	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session/recording"
	"github.com/airlock-gw/airlock/sqlrisk"
)

// runClassify is `airlock classify`: a dry run of the classifier and a
// policy for people and CI pipelines, on JSON Lines commands or, with
// --diff, on the statements of recorded sessions.
func runClassify(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("classify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "take the classifier settings and the policy from this configuration")
	conn := fs.String("connection", "", "use this connection's policy (needs --config; with --diff, default: each recording's own)")
	diff := fs.Bool("diff", false, "replay the statements of the recordings named as arguments against the policy and list the decisions that change")
	asJSON := fs.Bool("json", false, "with --diff: one JSON object per changed decision")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: airlock classify [--config FILE [--connection NAME]] < commands.jsonl
       airlock classify --config CANDIDATE.yaml [--connection NAME] [--json] --diff SESSION-ID|FILE...

Reads one JSON object per line, e.g.
  {"protocol":"postgres","command":"DELETE FROM users"}
  {"protocol":"redis","args":["FLUSHALL"]}
and writes one decision per line, in the same order:
  {"action":"review","risk":"high","rules":["dml.unbounded_delete"],"statements":[...]}

With --diff, each recorded command that Airlock decided is classified again
from its recorded (redacted) text and decided by the candidate policy for the
recording's caller; every decision that differs from the policy's recorded one
is listed. Exit status: 0 nothing changes, 1 some decision changes, 2 usage
error or a recording that cannot be read or fails verification.`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	classifier := sqlrisk.New(sqlrisk.Config{})
	pol := policy.Default()
	var cfg *config.Config
	if *path != "" {
		var err error
		var notes []string
		if cfg, notes, err = config.LoadForTools(*path, engines()...); err != nil {
			fmt.Fprintf(stderr, "airlock classify: %s: %v\n", *path, err)
			return 2
		}
		printNotes(stderr, "airlock classify", notes)
		classifier = sqlrisk.New(cfg.Classifier)
		if pol, err = connectionPolicy(cfg, *conn); err != nil {
			fmt.Fprintf(stderr, "airlock classify: %v\n", err)
			return 2
		}
	} else if *conn != "" || *diff {
		fmt.Fprintln(stderr, "airlock classify: --connection and --diff need --config")
		return 2
	}
	if *diff {
		if fs.NArg() == 0 {
			fmt.Fprintln(stderr, "airlock classify: --diff needs one or more recordings (session ids or files)")
			return 2
		}
		return runPolicyDiff(policyDiff{cfg: cfg, classifier: classifier, connection: *conn, json: *asJSON}, fs.Args(), stdout, stderr)
	}
	if err := sqlrisk.RunJSONL(stdin, stdout, classifier, pol); err != nil {
		fmt.Fprintf(stderr, "airlock classify: %v\n", err)
		return 1
	}
	return 0
}

// connectionPolicy compiles the policy of the connection named conn, or
// the global policy when conn is empty.
func connectionPolicy(cfg *config.Config, conn string) (*policy.Policy, error) {
	var cn config.Connection
	if conn != "" {
		c := cfg.Connection(conn)
		if c == nil {
			return nil, fmt.Errorf("no connection %q in the configuration", conn)
		}
		cn = *c
	}
	return cfg.ConnectionPolicy(&cn)
}

// policyDiff replays recordings against a candidate policy.
type policyDiff struct {
	cfg        *config.Config
	classifier protocols.Classifier
	connection string
	json       bool
}

// policyChange is one decision that the candidate policy takes otherwise.
type policyChange struct {
	Session   string           `json:"session"`
	Frame     int64            `json:"frame"`
	Command   string           `json:"command"`
	Recorded  protocols.Action `json:"recorded"`
	Candidate protocols.Action `json:"candidate"`
	Risk      protocols.Risk   `json:"risk"`
	Rules     []string         `json:"rules"`
}

// diffStats counts what a diff saw.
type diffStats struct {
	decided, changed, granted, unreadable int
}

func runPolicyDiff(d policyDiff, recs []string, stdout, stderr io.Writer) int {
	key, err := d.cfg.Recording.Key()
	if err != nil {
		fmt.Fprintf(stderr, "airlock classify: recording.hmac_key_env: %v\n", err)
		return 2
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	var total diffStats
	for _, arg := range recs {
		file, err := recording.Locate(d.cfg.Recording.Dir, arg)
		if err == nil {
			err = d.one(file, key, out, &total)
		}
		if err != nil {
			out.Flush()
			fmt.Fprintf(stderr, "airlock classify: %s: %v\n", arg, err)
			return 2
		}
	}
	if !d.json {
		fmt.Fprintf(out, "%d of %d decided commands change", total.changed, total.decided)
		if total.granted > 0 {
			fmt.Fprintf(out, "; %d decided under an access grant not compared", total.granted)
		}
		if total.unreadable > 0 {
			fmt.Fprintf(out, "; %d without text to classify again (Redis arguments and HTTP bodies are not recorded)", total.unreadable)
		}
		fmt.Fprintln(out)
	}
	if total.changed > 0 {
		return 1
	}
	return 0
}

// one diffs one recording. A recording still being written (unfinished)
// is diffed as far as it goes; an altered one is an error.
func (d policyDiff) one(file string, key []byte, out *bufio.Writer, total *diffStats) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := recording.NewReader(f, key)
	if err != nil {
		return err
	}
	h := r.Header()
	conn := d.connection
	if conn == "" && d.cfg.Connection(h.Connection) != nil {
		conn = h.Connection
	}
	pol, err := connectionPolicy(d.cfg, conn)
	if err != nil {
		return err
	}
	if !d.json {
		fmt.Fprintf(out, "recording %s (%s on %s, %s), policy of %s\n", h.SessionID, h.Identity.Name, h.Connection, h.Protocol, orGlobal(conn))
	}
	var cmd *recording.Frame
	for {
		fr, err := r.Next()
		if errors.Is(err, io.EOF) || errors.Is(err, recording.ErrUnfinished) {
			return nil
		}
		if err != nil {
			return err
		}
		switch fr.Type {
		case recording.FrameCommand:
			cmd = fr
			continue
		case recording.FrameDecision:
			if cmd != nil {
				d.compare(h, pol, cmd, fr.Decision, out, total)
			}
		}
		cmd = nil
	}
}

// compare decides one recorded command with the candidate policy.
func (d policyDiff) compare(h recording.Header, pol *policy.Policy, cmd *recording.Frame, dec *protocols.Decision, out *bufio.Writer, total *diffStats) {
	total.decided++
	if dec.Grant != "" {
		total.granted++
		return
	}
	c := cmd.Command
	if c.Text == "" || c.Args > 0 || c.Tool != "" || c.Method != "" {
		total.unreadable++
		return
	}
	cls := d.classifier.Classify(&protocols.Command{Protocol: h.Protocol, Text: c.Text, Kind: c.Kind})
	was, now := recordedVerdict(dec), pol.Decide(h.Identity, cls).Action
	if was == now {
		return
	}
	total.changed++
	ch := policyChange{Session: h.SessionID, Frame: cmd.Index, Command: c.Text, Recorded: was, Candidate: now, Risk: cls.Risk, Rules: cls.Rules}
	if d.json {
		b, _ := json.Marshal(ch)
		out.Write(append(b, '\n'))
		return
	}
	text := strings.Join(strings.Fields(c.Text), " ")
	if len(text) > 120 {
		text = text[:117] + "..."
	}
	fmt.Fprintf(out, "  frame %-6d %-6s -> %-6s  %-24s %s\n", cmd.Index, was, now, strings.Join(cls.Rules, ","), text)
}

// recordedVerdict is the policy's action as the decision frame records
// it; recordings that predate the policy action field name it only by an
// approval id (a review).
func recordedVerdict(d *protocols.Decision) protocols.Action {
	switch {
	case d.PolicyAction != "":
		return d.PolicyAction
	case d.ApprovalID != "":
		return protocols.Review
	}
	return d.Action
}

func orGlobal(conn string) string {
	if conn == "" {
		return "the global policy"
	}
	return "connection " + conn
}
