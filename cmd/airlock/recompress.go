package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/airlock-gw/airlock/cmd/airlock/config"
	"github.com/airlock-gw/airlock/session/index"
	"github.com/airlock-gw/airlock/session/recording"
	"github.com/airlock-gw/airlock/session/sqldb"
)

const recompressUsage = "usage: airlock sessions recompress [--config FILE] [--codec zstd|s2] SESSION-ID|FILE|DIR ..."

// runRecompress is `airlock sessions recompress`: it rewrites the
// recordings of ended sessions with another codec (zstd, for long
// retention), re-chaining and re-sealing each with the configured key, and
// records their new sizes in the session index. Sessions that the index
// says are still recording, or that it does not know, are left alone.
func runRecompress(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sessions recompress", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "airlock.yaml", "configuration file (store, recording directory and key)")
	codec := fs.String("codec", string(recording.CompressZstd), "codec to rewrite with: zstd or s2")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	to := recording.Compression(*codec)
	if to != recording.CompressZstd && to != recording.CompressS2 {
		fmt.Fprintf(stderr, "airlock sessions recompress: --codec: unknown codec %q (want zstd or s2)\n", *codec)
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, recompressUsage)
		return 2
	}
	cfg, notes, err := config.LoadForTools(*path, engines()...)
	if err != nil {
		fmt.Fprintf(stderr, "airlock sessions recompress: %s: %v\n", *path, err)
		return 2
	}
	printNotes(stderr, "airlock sessions recompress", notes)
	var key []byte // signed recordings are refused without it, unsigned ones need none
	if _, set := os.LookupEnv(cfg.Recording.HMACKeyEnv); set {
		key, err = cfg.Recording.Key()
	}
	if err != nil {
		fmt.Fprintf(stderr, "airlock sessions recompress: recording.hmac_key_env: %v\n", err)
		return 2
	}
	files, err := recordingFiles(cfg.Recording.Dir, fs.Args())
	if err != nil {
		fmt.Fprintf(stderr, "airlock sessions recompress: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sqldb.Open(ctx, cfg.Store)
	if err != nil {
		fmt.Fprintf(stderr, "airlock sessions recompress: %v\n", err)
		return 1
	}
	defer db.Close()
	idx, err := index.Open(ctx, db.DB, string(db.Dialect), index.Options{Dir: cfg.Recording.Dir})
	if err != nil {
		fmt.Fprintf(stderr, "airlock sessions recompress: %v\n", err)
		return 1
	}
	defer idx.Close()
	return recompressAll(idx, files, to, key, stdout, stderr)
}

// recompressAll rewrites each file and prints one line per file and a
// total; it returns 1 when any file failed.
func recompressAll(idx *index.Store, files []string, to recording.Compression, key []byte, stdout, stderr io.Writer) int {
	code := 0
	var before, after int64
	done := 0
	for _, file := range files {
		res, note, err := recompressOne(idx, file, to, key)
		switch {
		case err != nil:
			fmt.Fprintf(stderr, "airlock sessions recompress: %s: %v\n", file, err)
			code = 1
		case note != "":
			fmt.Fprintf(stdout, "%s: %s\n", file, note)
		default:
			done++
			before, after = before+res.Before, after+res.After
			sealed := "unsigned, re-chained"
			if res.Resealed {
				sealed = "re-chained and re-sealed with the key"
			}
			fmt.Fprintf(stdout, "%s: %s to %s, %d to %d bytes, %d frames, %s\n", file, res.From, res.To, res.Before, res.After, res.Frames, sealed)
		}
	}
	if done > 0 {
		fmt.Fprintf(stdout, "recompressed %d recording%s: %d to %d bytes (%.2fx)\n", done, plural(done), before, after, float64(before)/float64(max(after, 1)))
	}
	return code
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// recompressOne rewrites one file if the index says its session has ended.
// A note says why a file was left alone without that being an error.
func recompressOne(idx *index.Store, file string, to recording.Compression, key []byte) (recording.Recompressed, string, error) {
	var res recording.Recompressed
	h, err := recording.ReadHeader(file)
	if err != nil {
		return res, "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := idx.Get(ctx, h.SessionID)
	switch {
	case errors.Is(err, index.ErrNotFound):
		// A session that has just started may not be in the index yet.
		return res, "left alone: session " + h.SessionID + " is not in the session index, which alone says whether it has ended", nil
	case err != nil:
		return res, "", err
	case s.Active():
		return res, "left alone: session " + h.SessionID + " is still recording", nil
	}
	if !sameFile(s.Path, file) {
		return res, "", fmt.Errorf("the session index has session %s's recording at %s, not here; left alone", h.SessionID, s.Path)
	}
	res, err = recording.Recompress(file, to, key)
	if err != nil {
		return res, "", err
	}
	if res.Skipped() {
		return res, "already " + string(to), nil
	}
	if err := idx.Resized(ctx, h.SessionID, res.After); err != nil {
		return res, "", fmt.Errorf("recompressed, but the session index keeps the old size: %w", err)
	}
	return res, "", nil
}

// sameFile reports whether the index's path and the one given name the
// same file.
func sameFile(a, b string) bool {
	x, err1 := os.Stat(a)
	y, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(x, y)
}

// recordingFiles expands the arguments: a directory stands for the
// recordings directly in it (not the temporary files of an interrupted
// recompression, whose names start with a dot), a file for itself, and
// anything else for a session id in dir.
func recordingFiles(dir string, args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		if st, err := os.Stat(a); err == nil && st.IsDir() {
			m, err := filepath.Glob(filepath.Join(a, "*"+recording.FileExt))
			if err != nil {
				return nil, err
			}
			for _, p := range m {
				if !strings.HasPrefix(filepath.Base(p), ".") {
					out = append(out, p)
				}
			}
			continue
		}
		p, err := recording.Locate(dir, a)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
