package index

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/session/recording"
)

const day = 24 * time.Hour

var now = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

type fixture struct {
	t   *testing.T
	s   *Store
	dir string
}

// finished records a finished session whose file of size bytes exists.
func (f fixture) finished(id, node string, ended time.Time, bytes int) string {
	f.t.Helper()
	path := filepath.Join(f.dir, id+recording.FileExt)
	must(f.t, os.WriteFile(path, make([]byte, bytes), 0o600))
	e := entry(id, "alice", "c", ended.Add(-time.Hour), path)
	e.Node = node
	must(f.t, f.s.Started(context.Background(), e))
	e.End, e.Bytes, e.EndReason = ended, int64(bytes), "client closed"
	must(f.t, f.s.Ended(context.Background(), e))
	return path
}

func (f fixture) active(id string, started time.Time, bytes int) string {
	f.t.Helper()
	path := filepath.Join(f.dir, id+recording.FileExt)
	must(f.t, os.WriteFile(path, make([]byte, bytes), 0o600))
	must(f.t, f.s.Started(context.Background(), entry(id, "alice", "c", started, path)))
	return path
}

func (f fixture) ids() []string {
	f.t.Helper()
	list, err := f.s.List(context.Background(), Filter{Limit: MaxLimit})
	must(f.t, err)
	var ids []string
	for _, x := range list {
		ids = append(ids, x.ID)
	}
	slices.Sort(ids)
	return ids
}

func newFixture(t *testing.T, db *sql.DB, dialect string) fixture {
	dir := t.TempDir()
	return fixture{t: t, s: openStore(t, db, dialect, "node-a", dir), dir: dir}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func TestPruneByAge(t *testing.T) {
	dialects(t, func(t *testing.T, db *sql.DB, dialect string) {
		f := newFixture(t, db, dialect)
		old1 := f.finished("old1", "node-a", now.Add(-40*day), 100)
		old2 := f.finished("old2", "node-a", now.Add(-35*day), 200)
		recent := f.finished("recent", "node-a", now.Add(-day), 300)
		running := f.active("running", now.Add(-60*day), 400)
		foreign := f.finished("foreign", "node-b", now.Add(-50*day), 500)

		p, err := f.s.Prune(context.Background(), recording.Retention{MaxAge: 30 * day}, now)
		must(t, err)
		if p.Sessions != 2 || p.Bytes != 300 || p.Kept != 0 {
			t.Errorf("pruned %+v, want 2 sessions, 300 bytes", p)
		}
		if exists(old1) || exists(old2) {
			t.Error("expired recordings still on disk")
		}
		for _, path := range []string{recent, running, foreign} {
			if !exists(path) {
				t.Errorf("%s deleted", path)
			}
		}
		if got := strings.Join(f.ids(), " "); got != "foreign recent running" {
			t.Errorf("rows left: %s", got)
		}
	})
}

func TestPruneBySize(t *testing.T) {
	dialects(t, func(t *testing.T, db *sql.DB, dialect string) {
		f := newFixture(t, db, dialect)
		var paths []string
		for i := range 5 {
			paths = append(paths, f.finished("s"+string(rune('0'+i)), "node-a", now.Add(-time.Duration(10-i)*time.Hour), 1000))
		}
		running := f.active("running", now.Add(-100*day), 50000)

		p, err := f.s.Prune(context.Background(), recording.Retention{MaxBytes: 2500}, now)
		must(t, err)
		if p.Sessions != 3 || p.Bytes != 3000 {
			t.Errorf("pruned %+v, want the 3 oldest", p)
		}
		for i, path := range paths {
			if exists(path) != (i >= 3) {
				t.Errorf("s%d on disk: %v", i, exists(path))
			}
		}
		if !exists(running) {
			t.Error("an active recording was deleted")
		}
		if got := strings.Join(f.ids(), " "); got != "running s3 s4" {
			t.Errorf("rows left: %s", got)
		}
		// Under the bound: nothing more goes.
		p, err = f.s.Prune(context.Background(), recording.Retention{MaxBytes: 2500}, now)
		if err != nil || p.Sessions != 0 {
			t.Errorf("second pass: %+v, %v", p, err)
		}
	})
}

func TestPruneDeletesOnlyRecordingsInItsDirectory(t *testing.T) {
	dialects(t, func(t *testing.T, db *sql.DB, dialect string) {
		ctx := context.Background()
		f := newFixture(t, db, dialect)
		outside := filepath.Join(t.TempDir(), "precious.alrec")
		must(t, os.WriteFile(outside, []byte("keep me"), 0o600))
		notRec := filepath.Join(f.dir, "notes.txt")
		must(t, os.WriteFile(notRec, []byte("keep me"), 0o600))
		for id, path := range map[string]string{
			"outside":  outside,
			"traverse": f.dir + "/../" + filepath.Base(filepath.Dir(outside)) + "/precious.alrec",
			"other":    notRec,
			"relative": "relative.alrec",
		} {
			e := entry(id, "mallory", "c", now.Add(-100*day), path)
			must(t, f.s.Started(ctx, e))
			e.End, e.Bytes = now.Add(-99*day), 7
			must(t, f.s.Ended(ctx, e))
		}
		gone := f.finished("gone", "node-a", now.Add(-99*day), 10)
		must(t, os.Remove(gone)) // already deleted by hand: the row goes too

		p, err := f.s.Prune(ctx, recording.Retention{MaxAge: day}, now)
		if err == nil || !strings.Contains(err.Error(), "is not a recording in") {
			t.Errorf("Prune error = %v, want a refusal", err)
		}
		if p.Kept != 4 || p.Sessions != 1 {
			t.Errorf("pruned %+v, want 4 kept and 1 deleted", p)
		}
		if !exists(outside) || !exists(notRec) {
			t.Error("a file outside the recordings was deleted")
		}
		if got := strings.Join(f.ids(), " "); got != "other outside relative traverse" {
			t.Errorf("rows left: %s", got)
		}
	})
}

func TestPruneNeedsTheDirectory(t *testing.T) {
	dialects(t, func(t *testing.T, db *sql.DB, dialect string) {
		s := openStore(t, db, dialect, "node-a", "")
		if _, err := s.Prune(context.Background(), recording.Retention{MaxAge: day}, now); err == nil {
			t.Error("Prune without a directory succeeded")
		}
		if p, err := s.Prune(context.Background(), recording.Retention{}, now); err != nil || p != (Pruned{}) {
			t.Errorf("Prune without bounds = %+v, %v", p, err)
		}
	})
}

func TestRunPrunesUntilCancelled(t *testing.T) {
	dialects(t, func(t *testing.T, db *sql.DB, dialect string) {
		f := newFixture(t, db, dialect)
		old := f.finished("old", "node-a", time.Now().Add(-10*day), 10)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			f.s.Run(ctx, recording.Retention{MaxAge: day, Interval: time.Second})
		}()
		deadline := time.Now().Add(10 * time.Second)
		for exists(old) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		<-done
		if exists(old) {
			t.Error("Run did not prune the expired recording")
		}
	})
}
