package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// errVerify marks a target that does not behave as the report would say it
// does; measuring it would produce numbers that mean something else.
var errVerify = errors.New("target check failed")

// ordinaryQuery reads the whole ordinary table in a stable order.
var ordinaryQuery = "SELECT " + strings.Join(ordinaryColumns, ", ") + " FROM " + ordinaryTable + " ORDER BY id"

// ordinaryResult is the ordinary table as one target returned it, in text
// format, through the simple and the extended protocol.
type ordinaryResult struct {
	simple, extended [][][]byte
}

// verifyTargets runs queries through every target before measuring: the
// pgbench tables are reachable; airlock-full masks the wide table's e-mail
// addresses, airlock-full-nomask does not and airlock-full-norec does;
// airlock-quickstart masks them with airlock.yaml's detectors and
// airlock-quickstart-nomask does not;
// airlock-full-norec leaves no recording; and the ordinary table's rows
// come back byte-identical to direct through every target, so that the
// ordinary workload measures masking with nothing to mask. targets[0] is
// direct (selectTargets always puts it first).
func (b *bench) verifyTargets(ctx context.Context, targets []*target, rep *Report) error {
	rep.MaskingSeen = "not checked (no airlock-full target)"
	if len(targets) == 0 || targets[0].name != targetDirect {
		return fmt.Errorf("%w: direct must be the first target", errVerify)
	}
	var clear, masked string
	var ref ordinaryResult
	var checked []string
	for _, t := range targets {
		email, rows, err := b.verifyTarget(ctx, t)
		if err != nil {
			return err
		}
		switch t.name {
		case targetDirect:
			clear, ref = email, rows
			continue
		case targetFull:
			masked = email
			if email != clear {
				rep.MaskingSeen = fmt.Sprintf("yes (`%s` came back as `%s`)", clear, email)
			} else {
				rep.MaskingSeen = "no (e-mail addresses came back in clear)"
			}
		case targetNoMask:
			if email != clear {
				return fmt.Errorf("%w: %s returned `%s` as `%s`: it still masks, so it cannot measure what masking costs", errVerify, t.name, clear, email)
			}
			rep.Checks = append(rep.Checks, fmt.Sprintf("%s returned `%s` in clear: masking off.", t.name, clear))
		case targetQuickstart:
			if email == clear {
				return fmt.Errorf("%w: %s returned `%s` in clear: airlock.yaml's masking did not apply", errVerify, t.name, clear)
			}
			rep.Checks = append(rep.Checks, fmt.Sprintf("%s returned `%s` as `%s`: airlock.yaml's masking on.", t.name, clear, email))
		case targetQuickstartNoMask:
			if email != clear {
				return fmt.Errorf("%w: %s returned `%s` as `%s`: it still masks, so it cannot measure what masking costs", errVerify, t.name, clear, email)
			}
			rep.Checks = append(rep.Checks, fmt.Sprintf("%s returned `%s` in clear: masking off.", t.name, clear))
		case targetNoRec:
			if masked != "" && email != masked {
				return fmt.Errorf("%w: %s returned `%s` where airlock-full returned `%s`: it must mask as airlock-full does", errVerify, t.name, email, masked)
			}
			if n, _ := countRecordings(b.recordingDirs(t)...); n > 0 {
				return fmt.Errorf("%w: %s wrote %d recording files with recording disabled", errVerify, t.name, n)
			}
			rep.Checks = append(rep.Checks, fmt.Sprintf("%s returned `%s` as airlock-full does: masking on.", t.name, email))
		}
		if err := sameOrdinary(ref, rows, t.name); err != nil {
			return err
		}
		checked = append(checked, t.name)
	}
	if len(checked) > 0 {
		rep.Checks = append(rep.Checks, fmt.Sprintf("All %s rows × %d values of `%s` came back byte-identical to direct through %s, by the simple protocol and by the extended protocol with text results: nothing in the ordinary workload trips a masking detector.",
			thousands(ordinaryRows), len(ordinaryColumns), ordinaryTable, strings.Join(checked, ", ")))
	}
	return nil
}

// verifyTarget checks that t reaches the pgbench tables and returns the
// first e-mail address of the wide table and the ordinary table as t shows
// them.
func (b *bench) verifyTarget(ctx context.Context, t *target) (string, ordinaryResult, error) {
	var rows ordinaryResult
	cfg, err := t.connConfig()
	if err != nil {
		return "", rows, err
	}
	vctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	c, err := pgx.ConnectConfig(vctx, pgxConfig(cfg))
	if err != nil {
		return "", rows, fmt.Errorf("verify %s: connect: %w%s", t.name, err, serviceTail(t))
	}
	defer c.Close(context.Background())
	var n int
	var email string
	err = c.QueryRow(vctx, "SELECT count(*) FROM pgbench_branches").Scan(&n)
	if err == nil {
		err = c.QueryRow(vctx, "SELECT email FROM "+wideTable+" WHERE id = 1").Scan(&email)
	}
	if err == nil {
		rows, err = fetchOrdinary(vctx, c.PgConn())
	}
	if err != nil {
		return "", rows, fmt.Errorf("verify %s: query: %w%s", t.name, err, serviceTail(t))
	}
	if n != b.opt.scale {
		return "", rows, fmt.Errorf("verify %s: pgbench_branches has %d rows, want %d", t.name, n, b.opt.scale)
	}
	return email, rows, nil
}

// fetchOrdinary reads the ordinary table twice, as psql and as pgbench
// -M prepared would: a simple query, then Parse/Bind/Execute with text
// results. Values are copied out of pgconn's reused buffers.
func fetchOrdinary(ctx context.Context, pc *pgconn.PgConn) (ordinaryResult, error) {
	var out ordinaryResult
	res, err := pc.Exec(ctx, ordinaryQuery).ReadAll()
	if err != nil {
		return out, fmt.Errorf("simple query on %s: %w", ordinaryTable, err)
	}
	if len(res) != 1 {
		return out, fmt.Errorf("simple query on %s: %d results, want 1", ordinaryTable, len(res))
	}
	out.simple = res[0].Rows
	r := pc.ExecParams(ctx, ordinaryQuery, nil, nil, nil, nil).Read()
	if r.Err != nil {
		return out, fmt.Errorf("extended query on %s: %w", ordinaryTable, r.Err)
	}
	out.extended = r.Rows
	return out, nil
}

// sameOrdinary reports the first value in which got differs from want.
func sameOrdinary(want, got ordinaryResult, target string) error {
	for _, p := range []struct {
		name      string
		want, got [][][]byte
	}{{"simple protocol", want.simple, got.simple}, {"extended protocol", want.extended, got.extended}} {
		if err := sameRows(p.want, p.got); err != nil {
			return fmt.Errorf("%w: %s, %s, table %s: %v: the ordinary workload would not measure masking with nothing to mask", errVerify, target, p.name, ordinaryTable, err)
		}
	}
	return nil
}

// sameRows compares two text-format results value by value.
func sameRows(want, got [][][]byte) error {
	if len(want) != ordinaryRows {
		return fmt.Errorf("direct returned %d rows, want %d", len(want), ordinaryRows)
	}
	if len(got) != len(want) {
		return fmt.Errorf("%d rows, direct %d", len(got), len(want))
	}
	for i := range want {
		if len(got[i]) != len(want[i]) {
			return fmt.Errorf("row %d: %d values, direct %d", i+1, len(got[i]), len(want[i]))
		}
		for j := range want[i] {
			if (got[i][j] == nil) != (want[i][j] == nil) || !bytes.Equal(got[i][j], want[i][j]) {
				return fmt.Errorf("row %d, column %s: %s, direct %s", i+1, ordinaryColumns[j], showValue(got[i][j]), showValue(want[i][j]))
			}
		}
	}
	return nil
}

// thousands writes n with comma separators, as the report writes counts.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func showValue(v []byte) string {
	if v == nil {
		return "NULL"
	}
	return fmt.Sprintf("%q", v)
}

func serviceTail(t *target) string {
	if t.svc == nil {
		return ""
	}
	return "\n" + t.svc.logTail(1500)
}

// recordingDirs are where an Airlock target may write recordings: the
// directory its configuration names, and the default ./data/recordings
// under its working directory (inspect mode records there when no
// directory is configured).
func (b *bench) recordingDirs(t *target) []string {
	dirs := []string{b.recordingDir(t.name)}
	if t.work != "" {
		dirs = append(dirs, filepath.Join(t.work, "data", "recordings"))
	}
	return dirs
}

// countRecordings counts the files under dirs and their size.
func countRecordings(dirs ...string) (files int, size int64) {
	for _, dir := range dirs {
		_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files++
				if fi, err := d.Info(); err == nil {
					size += fi.Size()
				}
			}
			return nil
		})
	}
	return files, size
}

// recordingSummary says what an Airlock target recorded over the run.
func recordingSummary(files int, size int64) string {
	if files == 0 {
		return "none"
	}
	return fmt.Sprintf("%d recording files, %.1f MiB written during the run", files, float64(size)/(1<<20))
}
