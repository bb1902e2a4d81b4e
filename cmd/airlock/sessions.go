package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/airlock-gw/airlock/cmd/airlock/config"
	"github.com/airlock-gw/airlock/session/index"
	"github.com/airlock-gw/airlock/session/recording"
	"github.com/airlock-gw/airlock/session/sqldb"
)

// runSessions is `airlock sessions list`: the session index, newest first.
func runSessions(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "list" {
		fmt.Fprintln(stderr, "usage: airlock sessions list [--config FILE] [--identity NAME] [--connection NAME] [--since DURATION|TIME] [--active] [--limit N] [--json]")
		return 2
	}
	fs := flag.NewFlagSet("sessions list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "airlock.yaml", "configuration file (for the store)")
	ident := fs.String("identity", "", "only sessions of this identity")
	conn := fs.String("connection", "", "only sessions on this connection")
	since := fs.String("since", "", "only sessions started since a duration ago (24h) or a time (2026-01-02T15:04:05Z)")
	active := fs.Bool("active", false, "only sessions still running")
	limit := fs.Int("limit", 100, "at most this many sessions")
	asJSON := fs.Bool("json", false, "print JSON")
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
	cfg, err := config.Load(*path, engines()...)
	if err != nil {
		fmt.Fprintf(stderr, "airlock sessions: %s: %v\n", *path, err)
		return 2
	}
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
	list, err := idx.List(ctx, f)
	if err != nil {
		fmt.Fprintf(stderr, "airlock sessions: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if list == nil {
			list = []index.Session{}
		}
		_ = enc.Encode(list)
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tIDENTITY\tCONNECTION\tCLIENT\tSTARTED\tDURATION\tFRAMES\tEND")
	for _, s := range list {
		dur, end := "running", ""
		if !s.End.IsZero() {
			dur = s.End.Sub(s.Start).Round(time.Millisecond).String()
			end = s.EndReason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", s.ID, s.Identity.Name, s.Connection, s.ClientAddr,
			s.Start.Local().Format("2006-01-02 15:04:05"), dur, s.Frames, end)
	}
	_ = tw.Flush()
	return 0
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
func recordingSettings(path string, explicit bool) (dir string, key []byte, err error) {
	dir = recording.DefaultDir
	if _, statErr := os.Stat(path); statErr != nil && !explicit {
		return dir, nil, nil
	}
	cfg, err := config.Load(path, engines()...)
	if err != nil {
		return "", nil, err
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
	dir, key, err := recordingSettings(*path, explicit)
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
