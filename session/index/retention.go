package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session/recording"
)

// Pruned says what one retention pass did.
type Pruned struct {
	// Sessions and Bytes count the recordings deleted, file and row.
	Sessions int
	Bytes    int64
	// Kept counts expired recordings that could not be deleted (their rows
	// stay, so a later pass retries); the error says why.
	Kept int
}

// pruneBatch bounds the rows one query hands to a pass.
const pruneBatch = 200

type candidate struct {
	id    string
	path  string
	bytes int64
	ended int64
}

// Prune deletes this node's finished recordings, file then row: first those
// that ended before now-MaxAge, then the oldest until the node's recordings
// total at most MaxBytes. A zero bound is off. A session still recording is
// never touched, and no file outside the recording directory is deleted,
// whatever its row says (such rows are kept and reported).
func (s *Store) Prune(ctx context.Context, r recording.Retention, now time.Time) (Pruned, error) {
	var p Pruned
	if r.MaxAge <= 0 && r.MaxBytes <= 0 {
		return p, nil
	}
	if s.dir == "" {
		return p, errors.New("prune recordings: the index has no recording directory (Options.Dir)")
	}
	var errs []error
	if r.MaxAge > 0 {
		cutoff := micros(now.Add(-r.MaxAge))
		err := s.each(ctx, "AND ended_us < ?", []any{cutoff}, func(c candidate) bool {
			errs = append(errs, s.remove(ctx, c, &p))
			return true
		})
		errs = append(errs, err)
	}
	if r.MaxBytes > 0 {
		var total int64
		err := s.db.QueryRowContext(ctx, s.d.Rebind(`SELECT COALESCE(SUM(bytes), 0) FROM airlock_sessions WHERE node = ?`), s.node).Scan(&total)
		if err != nil {
			errs = append(errs, fmt.Errorf("prune recordings: total size: %w", err))
		} else if total > int64(r.MaxBytes) {
			err := s.each(ctx, "", nil, func(c candidate) bool {
				before := p.Sessions
				errs = append(errs, s.remove(ctx, c, &p))
				if p.Sessions > before {
					total -= c.bytes
				}
				return total > int64(r.MaxBytes)
			})
			errs = append(errs, err)
		}
	}
	return p, errors.Join(errs...)
}

// each calls fn for this node's finished sessions matching extra, oldest
// end first, until fn returns false. It pages by (ended_us, id), so rows
// that fn keeps are not seen twice.
func (s *Store) each(ctx context.Context, extra string, args []any, fn func(candidate) bool) error {
	lastEnded, lastID := int64(-1<<63), ""
	for {
		q := `SELECT id, path, bytes, ended_us FROM airlock_sessions
			WHERE node = ? AND ended_us IS NOT NULL ` + extra + `
			AND (ended_us > ? OR (ended_us = ? AND id > ?))
			ORDER BY ended_us, id LIMIT ?`
		a := append([]any{s.node}, args...)
		a = append(a, lastEnded, lastEnded, lastID, pruneBatch)
		rows, err := s.db.QueryContext(ctx, s.d.Rebind(q), a...)
		if err != nil {
			return fmt.Errorf("prune recordings: %w", err)
		}
		var batch []candidate
		for rows.Next() {
			var c candidate
			if err := rows.Scan(&c.id, &c.path, &c.bytes, &c.ended); err != nil {
				rows.Close()
				return fmt.Errorf("prune recordings: %w", err)
			}
			batch = append(batch, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("prune recordings: %w", err)
		}
		for _, c := range batch {
			if !fn(c) {
				return nil
			}
			lastEnded, lastID = c.ended, c.id
		}
		if len(batch) < pruneBatch {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// remove deletes one recording's file, then its row.
func (s *Store) remove(ctx context.Context, c candidate, p *Pruned) error {
	if !s.owns(c.path) {
		p.Kept++
		s.log.Error("retention refuses to delete a file outside the recording directory", "session", c.id, "path", c.path, "dir", s.dir)
		return fmt.Errorf("prune session %s: %s is not a recording in %s", c.id, c.path, s.dir)
	}
	if err := os.Remove(c.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		p.Kept++
		s.log.Error("retention could not delete a recording", "session", c.id, "err", err)
		return fmt.Errorf("prune session %s: %w", c.id, err)
	}
	_, err := s.db.ExecContext(ctx, s.d.Rebind(`DELETE FROM airlock_sessions WHERE id = ? AND ended_us IS NOT NULL`), c.id)
	if err != nil {
		p.Kept++
		return fmt.Errorf("prune session %s: file deleted, row kept: %w", c.id, err)
	}
	p.Sessions++
	p.Bytes += c.bytes
	s.log.Info("recording deleted by retention", "session", c.id, "bytes", c.bytes)
	return nil
}

// owns reports whether path names a recording file directly inside the
// recording directory.
func (s *Store) owns(path string) bool {
	if !filepath.IsAbs(path) {
		return false
	}
	rel, err := filepath.Rel(s.dir, filepath.Clean(path))
	return err == nil && filepath.Base(rel) == rel && rel != ".." && rel != "." &&
		strings.HasSuffix(rel, recording.FileExt) && !strings.HasPrefix(rel, ".")
}

// Run prunes once at once, then every r.Interval until ctx ends, logging
// each pass. It returns at once when no bound is set.
func (s *Store) Run(ctx context.Context, r recording.Retention) {
	if r.MaxAge <= 0 && r.MaxBytes <= 0 {
		return
	}
	every := r.Interval
	if every <= 0 {
		every = recording.DefaultPruneInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		p, err := s.Prune(ctx, r, time.Now())
		if err != nil {
			s.log.Error("recording retention pass incomplete", "deleted", p.Sessions, "bytes", p.Bytes, "kept", p.Kept, "err", err)
		} else if p.Sessions > 0 {
			s.log.Info("recording retention pass", "deleted", p.Sessions, "bytes", p.Bytes)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Abandon closes this node's entries of sessions that started before
// before and never ended: their Airlock stopped (crash, kill) while they
// were recording. Call it at startup with the process start time. Each
// entry gets its file's size and last write time, and an end reason saying
// the recording is unfinished, so retention can reclaim it in time.
func (s *Store) Abandon(ctx context.Context, before time.Time) (int, error) {
	n, err := s.closeOpen(ctx, s.node, before, "abandoned: Airlock stopped while recording (the recording is unfinished)")
	if n > 0 {
		s.log.Warn("closed index entries of sessions abandoned by an earlier run", "sessions", n)
	}
	return n, err
}

// adoptMargin is how far before this node's newest entry Adopt looks for
// unregistered recordings: far more than a deferred start waits
// (deferWindow), so that clock steps and a busy writer are covered too.
const adoptMargin = time.Minute

// Adopt registers this node's recordings in the index's directory that have
// no entry. A starting session joins the index with the next batch of
// starts, within deferWindow (see recording.DeferredIndex), so a crash right
// after a session started can leave its file unregistered, where neither
// `sessions list` nor retention would find it. Call it at startup, before
// any session starts and before Abandon, which then closes the adopted
// entries as it closes the others. Only files written since this node's
// newest entry, less adoptMargin, have their header read, so a large
// directory costs a listing, not a read of every file; an index with no
// entry of this node adopts nothing. An adopted entry takes its session,
// identity, connection and start from the file's header.
func (s *Store) Adopt(ctx context.Context) (int, error) {
	if s.dir == "" {
		return 0, nil
	}
	var newest sql.NullInt64
	if err := s.db.QueryRowContext(ctx, s.d.Rebind(`SELECT MAX(started_us) FROM airlock_sessions WHERE node = ?`),
		s.node).Scan(&newest); err != nil {
		return 0, fmt.Errorf("adopt unregistered recordings: %w", err)
	}
	if !newest.Valid {
		return 0, nil
	}
	since := fromMicros(newest.Int64).Add(-adoptMargin)
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, fmt.Errorf("adopt unregistered recordings: %w", err)
	}
	n := 0
	for _, de := range ents {
		id, ok := strings.CutSuffix(de.Name(), recording.FileExt)
		if !ok || !de.Type().IsRegular() {
			continue
		}
		st, err := de.Info()
		if err != nil || st.ModTime().Before(since) {
			continue
		}
		if _, err := s.Get(ctx, id); !errors.Is(err, ErrNotFound) {
			if err != nil {
				return n, fmt.Errorf("adopt unregistered recordings: %w", err)
			}
			continue
		}
		path := filepath.Join(s.dir, de.Name())
		h, err := recording.ReadHeader(path)
		if err != nil || h.SessionID != id || h.Node != s.node {
			if err != nil {
				s.log.Warn("unregistered recording not adopted: unreadable header", "path", path, "err", err)
			}
			continue
		}
		e := recording.Entry{Info: protocols.SessionInfo{ID: id, Identity: h.Identity, Connection: h.Connection,
			Protocol: h.Protocol, ClientAddr: h.ClientAddr, Start: h.Start}, Path: path, Node: s.node}
		args, err := startedArgs(e)
		if err != nil {
			return n, err
		}
		if _, err := s.db.ExecContext(ctx, s.d.Rebind(startedQuery), args...); err != nil {
			return n, fmt.Errorf("adopt recording %s: %w", id, err)
		}
		n++
	}
	if n > 0 {
		s.log.Warn("registered recordings a crash kept out of the index", "sessions", n)
	}
	return n, nil
}
