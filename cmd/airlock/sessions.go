package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/airlock-gw/airlock/approvals"
	"github.com/airlock-gw/airlock/cmd/airlock/config"
	"github.com/airlock-gw/airlock/session/index"
	"github.com/airlock-gw/airlock/session/recording"
	"github.com/airlock-gw/airlock/session/sqldb"
)

// runSessions is `airlock sessions list`: the session index, newest first.
// `airlock sessions recompress` rewrites recordings (recompress.go).
func runSessions(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	switch {
	case len(args) > 0 && args[0] == "recompress":
		return runRecompress(args[1:], stdout, stderr)
	case len(args) > 0 && args[0] == "list":
		return runSessionsList(args, stdout, stderr)
	}
	fmt.Fprintln(stderr, "usage: airlock sessions list [--config FILE] [--identity NAME] [--connection NAME] [--since DURATION|TIME] [--active] [--grant ID] [--limit N] [--json]")
	fmt.Fprintln(stderr, "       "+strings.TrimPrefix(recompressUsage, "usage: "))
	return 2
}

func runSessionsList(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sessions list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "airlock.yaml", "configuration file (for the store)")
	ident := fs.String("identity", "", "only sessions of this identity")
	conn := fs.String("connection", "", "only sessions on this connection")
	since := fs.String("since", "", "only sessions started since a duration ago (24h) or a time (2026-01-02T15:04:05Z)")
	active := fs.Bool("active", false, "only sessions still running")
	limit := fs.Int("limit", 100, "at most this many sessions")
	asJSON := fs.Bool("json", false, "print JSON")
	grant := fs.String("grant", "", "only sessions with commands decided under this access grant")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	f := index.Filter{Identity: *ident, Connection: *conn, Active: *active, Limit: *limit}
	if *since != "" {
		t, err := parseSince(*since, time.Now())
		if err != nil {
			fmt.Fprintf(stderr, "airlock sessions: --since: %v\n", err)
			return 2
		}
		f.Since = t
	}
	cfg, notes, err := config.LoadForTools(*path, engines()...)
	if err != nil {
		fmt.Fprintf(stderr, "airlock sessions: %s: %v\n", *path, err)
		return 2
	}
	printNotes(stderr, "airlock sessions", notes)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sqldb.Open(ctx, cfg.Store)
	if err != nil {
		fmt.Fprintf(stderr, "airlock sessions: %v\n", err)
		return 1
	}
	defer db.Close()
	idx, err := index.Open(ctx, db.DB, string(db.Dialect), index.Options{Dir: cfg.Recording.Dir})
	if err != nil {
		fmt.Fprintf(stderr, "airlock sessions: %v\n", err)
		return 1
	}
	defer idx.Close()
	list, err := listSessions(ctx, db, idx, f, *grant)
	if err != nil {
		fmt.Fprintf(stderr, "airlock sessions: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if list == nil {
			list = []sessionRow{}
		}
		_ = enc.Encode(list)
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tIDENTITY\tCONNECTION\tCLIENT\tSTARTED\tDURATION\tFRAMES\tGRANTS\tEND")
	for _, s := range list {
		dur, end := "running", ""
		if !s.End.IsZero() {
			dur = s.End.Sub(s.Start).Round(time.Millisecond).String()
			end = s.EndReason
		}
		grants := strings.Join(s.Grants, ",")
		if grants == "" {
			grants = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", s.ID, s.Identity.Name, s.Connection, s.ClientAddr,
			s.Start.Local().Format("2006-01-02 15:04:05"), dur, s.Frames, grants, end)
	}
	_ = tw.Flush()
	return 0
}

// sessionRow is a session of the index with the access grants its
// commands were decided under.
type sessionRow struct {
	index.Session
	Grants []string `json:"grants,omitempty"`
}

// listSessions lists the index and adds the grants each session used,
// keeping only the sessions of grant when it is set.
func listSessions(ctx context.Context, db *sqldb.DB, idx *index.Store, f index.Filter, grant string) ([]sessionRow, error) {
	st, err := approvals.OpenStore(ctx, db, nil)
	if err != nil {
		return nil, err
	}
	var list []index.Session
	if grant != "" {
		// A grant's sessions are few: read them by id, newest first.
		uses, err := st.GrantSessions(ctx, grant)
		if err != nil {
			return nil, err
		}
		for i := len(uses) - 1; i >= 0; i-- {
			s, err := idx.Get(ctx, uses[i].Session)
			if errors.Is(err, index.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if (f.Identity == "" || s.Identity.Name == f.Identity) && (f.Connection == "" || s.Connection == f.Connection) &&
				!s.Start.Before(f.Since) && (!f.Active || s.Active()) && (f.Limit <= 0 || len(list) < f.Limit) {
				list = append(list, s)
			}
		}
	} else if list, err = idx.List(ctx, f); err != nil {
		return nil, err
	}
	ids := make([]string, len(list))
	for i, s := range list {
		ids[i] = s.ID
	}
	used, err := st.GrantUses(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]sessionRow, 0, len(list))
	for _, s := range list {
		out = append(out, sessionRow{Session: s, Grants: used[s.ID]})
	}
	return out, nil
}

func parseSince(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is neither a duration (24h) nor a time (2006-01-02T15:04:05Z)", v)
}

// recordingSettings reads the recording directory and key from a
// configuration when there is one; replay and verify also work on a bare
// file without it.
func recordingSettings(path string, explicit bool, stderr io.Writer, cmd string) (dir string, key []byte, err error) {
	dir = recording.DefaultDir
	if _, statErr := os.Stat(path); statErr != nil && !explicit {
		return dir, nil, nil
	}
	cfg, notes, err := config.LoadForTools(path, engines()...)
	if err != nil {
		return "", nil, err
	}
	printNotes(stderr, cmd, notes)
	if k := cfg.Recording.HMACKeyEnv; k != "" {
		if _, set := os.LookupEnv(k); !set {
			return cfg.Recording.Dir, nil, nil // the report says signatures were not checked
		}
	}
	key, err = cfg.Recording.Key()
	return cfg.Recording.Dir, key, err
}

// recordingArg parses replay's or verify's flags (fs has its own; --config
// is added here) and finds the recording its one argument names, with the
// key to check signatures. On failure it has reported the error and code
// is the exit status.
func recordingArg(fs *flag.FlagSet, args []string, usage string, stderr io.Writer) (file string, key []byte, code int) {
	fs.SetOutput(stderr)
	path := fs.String("config", "airlock.yaml", "configuration file (recording directory and key)")
	if err := fs.Parse(args); err != nil {
		return "", nil, 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "usage: airlock %s\n", usage)
		return "", nil, 2
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
	dir, key, err := recordingSettings(*path, explicit, stderr, "airlock "+fs.Name())
	if err != nil {
		fmt.Fprintf(stderr, "airlock %s: %v\n", fs.Name(), err)
		return "", nil, 2
	}
	file, err = recording.Locate(dir, fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "airlock %s: %v\n", fs.Name(), err)
		return "", nil, 1
	}
	return file, key, 0
}

// runReplay is `airlock replay ID|FILE`.
func runReplay(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "one JSON object per line instead of a transcript")
	file, key, code := recordingArg(fs, args, "replay [--config FILE] [--json] SESSION-ID|FILE", stderr)
	if code != 0 {
		return code
	}
	rep, err := recording.ReplayFile(stdout, file, recording.ReplayOptions{JSON: *asJSON, Key: key})
	if err != nil {
		fmt.Fprintf(stderr, "airlock replay: %v\n", err)
		return 1
	}
	if !rep.OK() {
		fmt.Fprintf(stderr, "airlock replay: %s\n", rep)
		return 1
	}
	return 0
}

// runVerify is `airlock verify FILE`: exit 0 only for an intact recording.
func runVerify(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	file, key, code := recordingArg(fs, args, "verify [--config FILE] SESSION-ID|FILE", stderr)
	if code != 0 {
		return code
	}
	rep, err := recording.VerifyFile(file, key)
	if err != nil {
		fmt.Fprintf(stderr, "airlock verify: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %s\n", file, rep)
	if !rep.OK() {
		return 1
	}
	return 0
}
