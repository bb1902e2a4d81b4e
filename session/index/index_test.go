package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	_ "modernc.org/sqlite"             // driver "sqlite"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/session/recording"
)

// dialects runs fn against a fresh database of each dialect: SQLite in a
// temporary directory and a new PostgreSQL database on the local server.
func dialects(t *testing.T, fn func(t *testing.T, db *sql.DB, dialect string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, sqliteDB(t), "sqlite") })
	t.Run("postgres", func(t *testing.T) {
		name := testenv.PostgresDB(t)
		db, err := sql.Open("pgx", testenv.PostgresURL(t, name))
		must(t, err)
		// Closed before the database is dropped (cleanups run last first).
		t.Cleanup(func() { db.Close() })
		fn(t, db, "postgres")
	})
}

// sqliteDB opens a fresh SQLite database in WAL mode in a temporary
// directory.
func sqliteDB(t *testing.T) *sql.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "airlock.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_txlock=immediate&_busy_timeout=10000&_journal_mode=WAL")
	must(t, err)
	t.Cleanup(func() { db.Close() })
	// Switching a new file to WAL takes an exclusive lock that SQLite's
	// busy handler does not wait for; the approvals store does it on one
	// connection before anything else, and so does this.
	must(t, db.Ping())
	return db
}

// waitQueued waits until n starts wait in s's queue; the caller holds wmu,
// which it releases before failing.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		s.qmu.Lock()
		q := len(s.startQ)
		s.qmu.Unlock()
		if q == n {
			return
		}
		if time.Now().After(deadline) {
			s.wmu.Unlock()
			t.Fatalf("%d of %d inserts queued", q, n)
		}
	}
}

// waitRow returns the row of id once it exists, or Get's error after 10 s.
func waitRow(s *Store, id string) (Session, error) {
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		x, err := s.Get(context.Background(), id)
		if err == nil || time.Now().After(deadline) {
			return x, err
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func openStore(t *testing.T, db *sql.DB, dialect, node, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), db, dialect, Options{Node: node, Dir: dir})
	must(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

var t0 = time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC)

func entry(id, who, conn string, start time.Time, path string) recording.Entry {
	return recording.Entry{
		Info: protocols.SessionInfo{ID: id, Protocol: protocols.Postgres, Connection: conn, ClientAddr: "10.1.2.3:5555",
			Identity: protocols.Identity{Name: who, Groups: []string{"dba"}, Method: "oidc"}, Start: start},
		Path: path, Node: "node-a",
	}
}

// TestEndedAll completes more entries in one call than one transaction
// takes: each known one is completed, an unknown one is reported by id
// without holding the others back, and the writes that follow still work.
func TestEndedAll(t *testing.T) {
	dialects(t, func(t *testing.T, db *sql.DB, dialect string) {
		ctx := context.Background()
		s := openStore(t, db, dialect, "node-a", t.TempDir())
		var es []recording.Entry
		for i := range endedChunk + 5 { // more than one transaction's worth
			id := fmt.Sprintf("batch-%d", i)
			e := entry(id, "alice", "prod-pg", t0.Add(time.Duration(i)*time.Second), "/r/"+id+".alrec")
			must(t, s.Started(ctx, e))
			e.End, e.EndReason, e.Frames, e.Bytes = e.Info.Start.Add(time.Minute), fmt.Sprintf("reason %d", i), int64(i+1), int64(100*(i+1))
			es = append(es, e)
		}
		ghost := entry("batch-ghost", "x", "y", t0, "/r/ghost.alrec")
		ghost.End = t0
		err := s.EndedAll(ctx, append(es[:2:2], append([]recording.Entry{ghost}, es[2:]...)...))
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "batch-ghost") || strings.Contains(err.Error(), "batch-1") {
			t.Fatalf("EndedAll = %v, want ErrNotFound for the ghost only", err)
		}
		for i, e := range es {
			got, err := s.Get(ctx, e.Info.ID)
			must(t, err)
			if got.Active() || got.EndReason != e.EndReason || got.Frames != int64(i+1) || got.Bytes != int64(100*(i+1)) || !got.End.Equal(e.End) {
				t.Errorf("%s = %+v", e.Info.ID, got)
			}
		}
		must(t, s.EndedAll(ctx, nil))
		next := entry("batch-next", "bob", "prod-pg", t0, "/r/next.alrec")
		must(t, s.Started(ctx, next))
		next.End = t0.Add(time.Second)
		must(t, s.Ended(ctx, next))
	})
}

// TestStartedGroupCommit queues several starting sessions behind a busy
// writer, as concurrent sessions queue behind a commit, so that they are
// inserted as one batch: each is registered, and a duplicate id among them
// refuses only its own session.
func TestStartedGroupCommit(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, sqliteDB(t), "sqlite", "node-a", t.TempDir())
	must(t, s.Started(ctx, entry("taken", "alice", "prod-pg", t0, "/r/taken.alrec")))

	ids := []string{"g-0", "g-1", "taken", "g-3", "g-4"}
	errs := make([]error, len(ids))
	s.wmu.Lock() // the writer is busy: every Started below queues
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() { errs[i] = s.Started(ctx, entry(id, "bob", "prod-pg", t0.Add(time.Second), "/r/"+id+".alrec")) })
	}
	waitQueued(t, s, len(ids))
	s.wmu.Unlock()
	wg.Wait()
	for i, id := range ids {
		got, gerr := s.Get(ctx, id)
		if id == "taken" {
			if errs[i] == nil || !strings.Contains(errs[i].Error(), "index session taken") {
				t.Errorf("duplicate id: Started = %v, want a refusal", errs[i])
			}
			if gerr != nil || got.Identity.Name != "alice" {
				t.Errorf("the first session of that id: %+v, %v", got, gerr)
			}
			continue
		}
		if errs[i] != nil || gerr != nil || got.Identity.Name != "bob" || !got.Active() {
			t.Errorf("%s: Started = %v; Get = %+v, %v", id, errs[i], got, gerr)
		}
	}
	// The writer works on after the failed batch.
	must(t, s.Started(ctx, entry("after", "carol", "prod-pg", t0, "/r/after.alrec")))
}

func TestOpenIsIdempotent(t *testing.T) {
	dialects(t, func(t *testing.T, db *sql.DB, dialect string) {
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() { _, errs[i] = Open(ctx, db, dialect, Options{}) })
		}
		wg.Wait()
		for _, err := range errs {
			must(t, err)
		}
		var n int
		must(t, db.QueryRowContext(ctx, `SELECT COUNT(*) FROM airlock_session_schema`).Scan(&n))
		if n != 1 {
			t.Errorf("%d schema version rows, want 1", n)
		}
		if _, err := Open(ctx, db, "mysql", Options{}); err == nil {
			t.Error("unknown dialect accepted")
		}
	})
}

func TestStartEndGetList(t *testing.T) {
	dialects(t, func(t *testing.T, db *sql.DB, dialect string) {
		ctx := context.Background()
		s := openStore(t, db, dialect, "node-a", t.TempDir())
		for i, e := range []recording.Entry{
			entry("s1", "alice", "prod-pg", t0, "/r/s1.alrec"),
			entry("s2", "bob", "prod-pg", t0.Add(time.Minute), "/r/s2.alrec"),
			entry("s3", "alice", "redis", t0.Add(2*time.Minute), "/r/s3.alrec"),
			entry("s4", "alice", "prod-pg", t0.Add(3*time.Minute), "/r/s4.alrec"),
		} {
			must(t, s.Started(ctx, e))
			if i < 3 {
				e.End, e.EndReason, e.Frames, e.Bytes = e.Info.Start.Add(30*time.Second), "client closed", int64(10*(i+1)), int64(1000*(i+1))
				must(t, s.Ended(ctx, e))
			}
		}
		if err := s.Started(ctx, entry("s1", "eve", "x", t0, "/r/dup.alrec")); err == nil {
			t.Error("a second entry with the same id was accepted")
		}

		got, err := s.Get(ctx, "s2")
		must(t, err)
		want := Session{ID: "s2", Identity: protocols.Identity{Name: "bob", Groups: []string{"dba"}, Method: "oidc"},
			Connection: "prod-pg", Protocol: protocols.Postgres, ClientAddr: "10.1.2.3:5555", Node: "node-a",
			Path: "/r/s2.alrec", Start: t0.Add(time.Minute), End: t0.Add(90 * time.Second), EndReason: "client closed",
			Frames: 20, Bytes: 2000}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Get = %+v\nwant  %+v", got, want)
		}
		if s4, _ := s.Get(ctx, "s4"); !s4.Active() || s4.Frames != 0 {
			t.Errorf("s4 = %+v, want active", s4)
		}
		if _, err := s.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(nope) = %v", err)
		}
		e := entry("ghost", "x", "y", t0, "/r/ghost.alrec")
		e.End = t0
		if err := s.Ended(ctx, e); !errors.Is(err, ErrNotFound) {
			t.Errorf("Ended(ghost) = %v", err)
		}

		for _, tc := range []struct {
			f    Filter
			want string
		}{
			{Filter{}, "s4 s3 s2 s1"},
			{Filter{Identity: "alice"}, "s4 s3 s1"},
			{Filter{Connection: "prod-pg"}, "s4 s2 s1"},
			{Filter{Identity: "alice", Connection: "prod-pg"}, "s4 s1"},
			{Filter{Since: t0.Add(time.Minute)}, "s4 s3 s2"},
			{Filter{Limit: 2}, "s4 s3"},
			{Filter{Active: true}, "s4"},
			{Filter{Identity: "nobody"}, ""},
		} {
			list, err := s.List(ctx, tc.f)
			must(t, err)
			var ids []string
			for _, x := range list {
				ids = append(ids, x.ID)
			}
			if strings.Join(ids, " ") != tc.want {
				t.Errorf("List(%+v) = %v, want %s", tc.f, ids, tc.want)
			}
		}
	})
}

// TestFactoryRegistersRecordings wires the index into the recording
// factory: a session's row holds its file, frames and bytes.
func TestFactoryRegistersRecordings(t *testing.T) {
	dialects(t, func(t *testing.T, db *sql.DB, dialect string) {
		ctx := context.Background()
		dir := t.TempDir()
		s := openStore(t, db, dialect, "node-a", dir)
		f, err := recording.NewFactory(recording.Config{Dir: dir}, recording.Options{Index: s, Node: "node-a"})
		must(t, err)
		defer f.Close()
		info := protocols.SessionInfo{ID: "live-1", Protocol: protocols.Postgres, Connection: "prod-pg",
			Identity: protocols.Identity{Name: "alice"}, Start: time.Now()}
		rec, err := f.Open(info)
		must(t, err)
		// On SQLite the row joins the next batch of starts, within
		// deferWindow.
		if x, err := waitRow(s, "live-1"); err != nil || !x.Active() {
			t.Fatalf("while recording: %+v, %v", x, err)
		}
		must(t, rec.Command(&protocols.Command{Kind: "query"}, "SELECT 1"))
		must(t, rec.Decision(protocols.Decision{Action: protocols.Allow}))
		must(t, rec.Close("client closed"))
		// A duplicate id is refused by the index as well as by the file system.
		if _, err := f.Open(info); err == nil {
			t.Error("second session with the same id opened")
		}
		// The entry is completed with the batch that syncs the file: the
		// flush ticker's, or the factory's close.
		must(t, f.Close())
		x, err := s.Get(ctx, "live-1")
		must(t, err)
		st, err := os.Stat(x.Path)
		must(t, err)
		rep, err := recording.VerifyFile(x.Path, nil)
		must(t, err)
		if x.Active() || x.EndReason != "client closed" || x.Bytes != st.Size() || x.Frames != rep.Frames || !rep.OK() {
			t.Errorf("entry %+v; file %d bytes; report %v", x, st.Size(), rep)
		}
	})
}

func TestAbandon(t *testing.T) {
	dialects(t, func(t *testing.T, db *sql.DB, dialect string) {
		ctx := context.Background()
		dir := t.TempDir()
		s := openStore(t, db, dialect, "node-a", dir)
		path := filepath.Join(dir, "crashed.alrec")
		must(t, os.WriteFile(path, make([]byte, 1234), 0o600))
		must(t, s.Started(ctx, entry("crashed", "alice", "c", t0, path)))
		must(t, s.Started(ctx, entry("current", "alice", "c", t0.Add(time.Hour), filepath.Join(dir, "current.alrec"))))
		other := entry("elsewhere", "alice", "c", t0, "/other/elsewhere.alrec")
		other.Node = "node-b"
		must(t, s.Started(ctx, other))

		n, err := s.Abandon(ctx, t0.Add(time.Minute))
		must(t, err)
		if n != 1 {
			t.Fatalf("abandoned %d, want 1", n)
		}
		x, _ := s.Get(ctx, "crashed")
		if x.Active() || x.Bytes != 1234 || !strings.Contains(x.EndReason, "abandoned") {
			t.Errorf("crashed = %+v", x)
		}
		for _, id := range []string{"current", "elsewhere"} {
			if x, _ := s.Get(ctx, id); !x.Active() {
				t.Errorf("%s closed: %+v", id, x)
			}
		}
	})
}

func TestConcurrentWrites(t *testing.T) {
	dialects(t, func(t *testing.T, db *sql.DB, dialect string) {
		ctx := context.Background()
		s := openStore(t, db, dialect, "node-a", t.TempDir())
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				e := entry(fmt.Sprintf("c%02d", i), "alice", "c", t0.Add(time.Duration(i)*time.Second), "/r/x.alrec")
				if err := s.Started(ctx, e); err != nil {
					t.Error(err)
					return
				}
				e.End, e.Bytes = e.Info.Start.Add(time.Second), 10
				if err := s.Ended(ctx, e); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		list, err := s.List(ctx, Filter{})
		must(t, err)
		if len(list) != 16 {
			t.Errorf("%d sessions listed, want 16", len(list))
		}
	})
}

// TestIndexWritesLeaveSyncSettings checks that index writes, which commit
// without waiting for the disk, leave every pooled connection with its own
// synchronous setting, so the approvals sharing the store still commit
// durably.
func TestIndexWritesLeaveSyncSettings(t *testing.T) {
	dialects(t, func(t *testing.T, db *sql.DB, dialect string) {
		ctx := context.Background()
		// Two connections for the pool, and on SQLite one more that the
		// index keeps for its writes.
		db.SetMaxOpenConns(3)
		if dialect == "sqlite" {
			// The approvals store opens SQLite with synchronous=FULL.
			path := filepath.Join(t.TempDir(), "full.db")
			var err error
			db, err = sql.Open("sqlite", "file:"+path+"?_txlock=immediate&_busy_timeout=10000&_journal_mode=WAL&_synchronous=FULL")
			must(t, err)
			t.Cleanup(func() { db.Close() })
			db.SetMaxOpenConns(3)
		}
		s := openStore(t, db, dialect, "node-a", t.TempDir())
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				e := entry(fmt.Sprintf("s%02d", i), "alice", "c", t0.Add(time.Duration(i)*time.Second), "/r/x.alrec")
				if err := s.Started(ctx, e); err != nil {
					t.Error(err)
					return
				}
				e.End = e.Info.Start.Add(time.Second)
				if err := s.Ended(ctx, e); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		// Hold both pooled connections at once so each is inspected: the
		// index's own relaxed connection must not be among them.
		var conns []*sql.Conn
		for range 2 {
			c, err := db.Conn(ctx)
			must(t, err)
			conns = append(conns, c)
		}
		for i, c := range conns {
			q, want := "PRAGMA synchronous", "2"
			if dialect == "postgres" {
				q, want = "SHOW synchronous_commit", "on"
			}
			var got string
			must(t, c.QueryRowContext(ctx, q).Scan(&got))
			if got != want {
				t.Errorf("connection %d: %s = %s after index writes, want %s", i, q, got, want)
			}
			c.Close()
		}
		list, err := s.List(ctx, Filter{})
		must(t, err)
		if len(list) != 8 || list[0].Active() {
			t.Fatalf("index holds %d sessions (first active: %v), want 8 ended", len(list), len(list) > 0 && list[0].Active())
		}
	})
}

// TestStartedWriter checks the writer goroutine's edges: a start whose
// caller gave up before its batch ran is neither inserted nor reported as
// registered, the others in its batch are, and after Close a start is
// refused rather than left waiting.
func TestStartedWriter(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, sqliteDB(t), "sqlite", "node-a", t.TempDir())

	gone, cancel := context.WithCancel(ctx)
	s.wmu.Lock() // the writer is busy while both queue
	var wg sync.WaitGroup
	var goneErr, liveErr error
	wg.Go(func() { goneErr = s.Started(gone, entry("w-gone", "bob", "prod-pg", t0, "/r/w-gone.alrec")) })
	wg.Go(func() { liveErr = s.Started(ctx, entry("w-live", "bob", "prod-pg", t0, "/r/w-live.alrec")) })
	waitQueued(t, s, 2)
	cancel()
	s.wmu.Unlock()
	wg.Wait()
	if !errors.Is(goneErr, context.Canceled) {
		t.Errorf("start of a caller that gave up: %v, want context.Canceled", goneErr)
	}
	if _, err := s.Get(ctx, "w-gone"); err == nil {
		t.Error("the row of a caller that gave up was inserted")
	}
	if _, err := s.Get(ctx, "w-live"); liveErr != nil || err != nil {
		t.Errorf("the live start: Started = %v, Get = %v", liveErr, err)
	}

	must(t, s.Close())
	if err := s.Started(ctx, entry("w-after", "bob", "prod-pg", t0, "/r/w-after.alrec")); !errors.Is(err, errStoreClosed) {
		t.Errorf("start after Close: %v, want %v", err, errStoreClosed)
	}
}

// TestCheckpointOffTheWriter checks that the index's writer leaves
// checkpoints to another connection: its own automatic checkpoint is only a
// far backstop, and every checkpointEvery commits a checkpoint copies the log
// back into the database beside it.
func TestCheckpointOffTheWriter(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, sqliteDB(t), "sqlite", "node-a", t.TempDir())
	var mu sync.Mutex
	var runs, copied int
	s.checkpointed = func(_, c int) {
		mu.Lock()
		runs, copied = runs+1, copied+c
		mu.Unlock()
	}
	// A checkpoint runs beside the writer, so on a busy machine the first
	// may find nothing it can copy yet; commits go on until one has copied
	// pages (or clearly never will).
	copiedSome := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return copied > 0
	}
	n := 0
	for round := 0; round < 2 || (!copiedSome() && round < 20); round++ {
		for range checkpointEvery {
			must(t, s.Started(ctx, entry(fmt.Sprintf("ck-%d", n), "bob", "prod-pg", t0, "/r/ck.alrec")))
			n++
		}
		s.ckptWG.Wait()
	}
	must(t, s.Started(ctx, entry(fmt.Sprintf("ck-%d", n), "bob", "prod-pg", t0, "/r/ck.alrec")))
	s.wmu.Lock()
	var backstop int
	err := s.wconn.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&backstop)
	s.wmu.Unlock()
	must(t, err)
	if backstop != walBackstop {
		t.Errorf("the writer's automatic checkpoint is at %d pages, want the backstop %d", backstop, walBackstop)
	}
	must(t, s.Close()) // waits for a running checkpoint
	mu.Lock()
	defer mu.Unlock()
	if runs < 1 || copied == 0 {
		t.Errorf("after %d commits: %d checkpoints copied %d pages, want at least one that copied pages", n+1, runs, copied)
	}
}

// refusals collects what StartedLater's refused callbacks report.
type refusals struct {
	mu  sync.Mutex
	got map[string]error
}

func (r *refusals) for_(id string) func(error) {
	return func(err error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.got == nil {
			r.got = map[string]error{}
		}
		if _, twice := r.got[id]; twice {
			err = fmt.Errorf("refused twice: %w", err)
		}
		r.got[id] = err
	}
}

func (r *refusals) of(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[id]
}

func (r *refusals) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// TestStartedLater queues deferred starts on SQLite: they are inserted
// together in one commit, a duplicate id among them is refused alone and
// reported once through its callback, an entry completed at once is found,
// and the starts still queued at Close are inserted.
func TestStartedLater(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, sqliteDB(t), "sqlite", "node-a", t.TempDir())
	must(t, s.Started(ctx, entry("taken", "alice", "prod-pg", t0, "/r/taken.alrec")))
	var ref refusals

	s.wmu.Lock()
	before := s.commits
	s.wmu.Unlock()
	ids := []string{"d-0", "d-1", "taken", "d-3", "d-4", "d-5"}
	for _, id := range ids {
		if !s.StartedLater(entry(id, "bob", "prod-pg", t0.Add(time.Second), "/r/"+id+".alrec"), ref.for_(id)) {
			t.Fatalf("StartedLater(%s) declined", id)
		}
	}
	for _, id := range ids {
		x, err := waitRow(s, id)
		if want := "bob"; id == "taken" {
			want = "alice"
			if x.Identity.Name != want {
				t.Errorf("the first session of the taken id: %+v, %v", x, err)
			}
		} else if err != nil || x.Identity.Name != want || !x.Active() {
			t.Errorf("%s: %+v, %v", id, x, err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ref.count() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if err := ref.of("taken"); err == nil || !strings.Contains(err.Error(), "index session taken") || strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate id refused with %v, want one refusal naming it", err)
	}
	if n := ref.count(); n != 1 {
		t.Errorf("%d refusals, want 1 (the duplicate)", n)
	}
	s.wmu.Lock()
	// The batch failed as a whole (the duplicate) and was retried row by
	// row: 1 commit per good row at most, and at least one fewer than
	// six separate starts would take, as long as the batch was one.
	commits := s.commits - before
	s.wmu.Unlock()
	if commits < 1 || commits > len(ids)-1 {
		t.Errorf("%d commits for %d deferred starts", commits, len(ids))
	}
	if s.failing.Load() {
		t.Error("index marked failing after a batch that inserted rows")
	}

	// Without the duplicate, the batch is one commit, and the writer
	// waits deferWindow for starts that come after the first.
	defer func(w time.Duration) { deferWindow = w }(deferWindow)
	deferWindow = 300 * time.Millisecond
	s.wmu.Lock()
	before = s.commits
	s.wmu.Unlock()
	for i := range 5 {
		id := fmt.Sprintf("e-%d", i)
		s.StartedLater(entry(id, "carol", "prod-pg", t0, "/r/"+id+".alrec"), ref.for_(id))
		if i == 0 {
			time.Sleep(30 * time.Millisecond)
		}
	}
	if _, err := waitRow(s, "e-4"); err != nil {
		t.Fatal(err)
	}
	s.wmu.Lock()
	commits = s.commits - before
	s.wmu.Unlock()
	if commits != 1 {
		t.Errorf("%d commits for a batch of 5 deferred starts, want 1", commits)
	}

	// An entry completed right after its deferred start is found.
	e := entry("quick", "dave", "prod-pg", t0, "/r/quick.alrec")
	s.StartedLater(e, ref.for_("quick"))
	e.End, e.EndReason = t0.Add(time.Millisecond), "done"
	must(t, s.EndedAll(ctx, []recording.Entry{e}))
	if x, err := s.Get(ctx, "quick"); err != nil || x.Active() || x.EndReason != "done" {
		t.Errorf("quick session: %+v, %v", x, err)
	}

	// Close inserts what is still queued.
	s.StartedLater(entry("last", "erin", "prod-pg", t0, "/r/last.alrec"), ref.for_("last"))
	must(t, s.Close())
	if x, err := s.Get(ctx, "last"); err != nil || x.Identity.Name != "erin" {
		t.Errorf("start queued at Close: %+v, %v", x, err)
	}
	if ref.count() != 1 {
		t.Errorf("refusals: %v", ref.got)
	}
	if s.StartedLater(entry("closed", "x", "y", t0, "/r/closed.alrec"), ref.for_("closed")) {
		t.Error("StartedLater took an entry after Close")
	}
}

// TestStartedLaterWhileFailing: once a batch of deferred starts inserts no
// row, StartedLater declines (the factory then registers synchronously and
// refuses sessions the index refuses), until a start succeeds again. On
// PostgreSQL it always declines.
func TestStartedLaterWhileFailing(t *testing.T) {
	dialects(t, func(t *testing.T, db *sql.DB, dialect string) {
		ctx := context.Background()
		s := openStore(t, db, dialect, "node-a", t.TempDir())
		var ref refusals
		if dialect == "postgres" {
			if s.StartedLater(entry("pg-later", "bob", "prod-pg", t0, "/r/pg.alrec"), ref.for_("pg-later")) {
				t.Error("StartedLater took an entry on PostgreSQL")
			}
			return
		}
		must(t, s.Started(ctx, entry("taken", "alice", "prod-pg", t0, "/r/taken.alrec")))
		if !s.StartedLater(entry("taken", "bob", "prod-pg", t0, "/r/taken2.alrec"), ref.for_("taken")) {
			t.Fatal("StartedLater declined on a healthy index")
		}
		for deadline := time.Now().Add(10 * time.Second); ref.count() == 0 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		if ref.of("taken") == nil {
			t.Fatal("duplicate deferred start not refused")
		}
		if s.StartedLater(entry("next", "bob", "prod-pg", t0, "/r/next.alrec"), ref.for_("next")) {
			t.Error("StartedLater took an entry after a batch that inserted nothing")
		}
		must(t, s.Started(ctx, entry("sync", "bob", "prod-pg", t0, "/r/sync.alrec")))
		if !s.StartedLater(entry("again", "bob", "prod-pg", t0, "/r/again.alrec"), ref.for_("again")) {
			t.Error("StartedLater still declines after a start succeeded")
		}
		if _, err := waitRow(s, "again"); err != nil {
			t.Error(err)
		}
	})
}

// TestFactoryIndexRefusesLater: a session whose deferred start the index
// refuses ends at its next command with ErrRecordingFailed, its recording
// is completed and verifies, and the row of the earlier session with that
// id is left alone.
func TestFactoryIndexRefusesLater(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, sqliteDB(t), "sqlite", "node-a", dir)
	must(t, s.Started(ctx, entry("dup-1", "alice", "prod-pg", t0, "/elsewhere/dup-1.alrec")))
	f, err := recording.NewFactory(recording.Config{Dir: dir}, recording.Options{Index: s, Node: "node-a"})
	must(t, err)
	defer f.Close()
	rec, err := f.Open(protocols.SessionInfo{ID: "dup-1", Protocol: protocols.Postgres, Connection: "prod-pg",
		Identity: protocols.Identity{Name: "mallory"}, Start: time.Now()})
	must(t, err)
	var cmdErr error
	for deadline := time.Now().Add(10 * time.Second); cmdErr == nil && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		cmdErr = rec.Command(&protocols.Command{Kind: "query"}, "SELECT 1")
	}
	if !errors.Is(cmdErr, recording.ErrRecordingFailed) || !strings.Contains(cmdErr.Error(), "index session dup-1") {
		t.Fatalf("Command after the index refused the session = %v, want ErrRecordingFailed naming it", cmdErr)
	}
	must(t, rec.Close("recording failed"))
	must(t, f.Close())
	path, err := f.Path("dup-1")
	must(t, err)
	if rep, err := recording.VerifyFile(path, nil); err != nil || !rep.OK() {
		t.Errorf("recording of the refused session: %v, %v", rep, err)
	}
	if x, err := s.Get(ctx, "dup-1"); err != nil || x.Identity.Name != "alice" || !x.Active() || x.Path != "/elsewhere/dup-1.alrec" {
		t.Errorf("earlier row changed: %+v, %v", x, err)
	}
}

// TestAdopt: a recording that a crash kept out of the index (its deferred
// start never inserted) is registered from its header at the next start,
// then closed by Abandon; recordings of another node, files older than the
// node's newest entry by more than adoptMargin, and files already indexed
// are left alone, and a second pass adopts nothing.
func TestAdopt(t *testing.T) {
	dialects(t, func(t *testing.T, db *sql.DB, dialect string) {
		ctx := context.Background()
		dir := t.TempDir()
		s := openStore(t, db, dialect, "node-a", dir)
		if n, err := s.Adopt(ctx); err != nil || n != 0 {
			t.Fatalf("Adopt on an index without this node's entries = %d, %v", n, err)
		}
		now := time.Now()
		record := func(node, id, who string, index recording.Index) string {
			t.Helper()
			f, err := recording.NewFactory(recording.Config{Dir: dir, Sync: recording.SyncSessionEnd}, recording.Options{Index: index, Node: node})
			must(t, err)
			rec, err := f.Open(protocols.SessionInfo{ID: id, Protocol: protocols.Postgres, Connection: "prod-pg",
				ClientAddr: "10.0.0.9:4000", Identity: protocols.Identity{Name: who, Groups: []string{"ops"}}, Start: now})
			must(t, err)
			must(t, rec.Command(&protocols.Command{Kind: "query"}, "SELECT 1"))
			must(t, rec.Close("client closed"))
			must(t, f.Close())
			path, err := f.Path(id)
			must(t, err)
			return path
		}
		record("node-a", "kept", "alice", s) // the node's newest entry
		lost := record("node-a", "lost", "bob", nil)
		record("node-b", "theirs", "carol", nil)
		old := record("node-a", "ancient", "dave", nil)
		must(t, os.Chtimes(old, now.Add(-2*adoptMargin), now.Add(-2*adoptMargin)))

		n, err := s.Adopt(ctx)
		if err != nil || n != 1 {
			t.Fatalf("Adopt = %d, %v; want the lost recording", n, err)
		}
		x, err := s.Get(ctx, "lost")
		must(t, err)
		if x.Identity.Name != "bob" || x.Connection != "prod-pg" || x.ClientAddr != "10.0.0.9:4000" || x.Path != lost ||
			!x.Start.Equal(now.Truncate(time.Microsecond)) || x.Node != "node-a" || !x.Active() {
			t.Errorf("adopted entry %+v", x)
		}
		for _, id := range []string{"theirs", "ancient"} {
			if _, err := s.Get(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s adopted: %v", id, err)
			}
		}
		if _, err := s.Abandon(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
		if x, _ := s.Get(ctx, "lost"); x.Active() || !strings.Contains(x.EndReason, "abandoned") {
			t.Errorf("adopted entry not closed by Abandon: %+v", x)
		}
		if n, err := s.Adopt(ctx); err != nil || n != 0 {
			t.Errorf("second Adopt = %d, %v", n, err)
		}
	})
}

// TestFactoryDeferredStartsConcurrent runs many short sessions at once
// through a factory on the SQLite index, whose starts are deferred and
// whose ends are batched: after the factory closes, every session has one
// completed entry that matches its file.
func TestFactoryDeferredStartsConcurrent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, sqliteDB(t), "sqlite", "node-a", dir)
	f, err := recording.NewFactory(recording.Config{Dir: dir}, recording.Options{Index: s, Node: "node-a"})
	must(t, err)
	const workers, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("c-%d-%d", w, i)
				rec, err := f.Open(protocols.SessionInfo{ID: id, Protocol: protocols.Postgres, Connection: "prod-pg",
					Identity: protocols.Identity{Name: "alice"}, Start: time.Now()})
				if err != nil {
					errs <- err
					continue
				}
				errs <- errors.Join(rec.Command(&protocols.Command{Kind: "query"}, "SELECT 1"), rec.Close("done"))
			}
		})
	}
	wg.Wait()
	must(t, f.Close())
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.List(ctx, Filter{Limit: workers * each * 2})
	must(t, err)
	ended := 0
	for _, x := range list {
		if !x.Active() && x.EndReason == "done" && x.Frames > 0 {
			ended++
		}
	}
	if len(list) != workers*each || ended != workers*each {
		t.Errorf("%d entries, %d completed; want %d of each", len(list), ended, workers*each)
	}
}

// writerChanges is SQLite's count of rows the index's own connection has
// inserted, updated or deleted since it opened.
func writerChanges(t *testing.T, s *Store) int64 {
	t.Helper()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var n int64
	if s.wconn == nil {
		return 0
	}
	must(t, s.wconn.QueryRowContext(context.Background(), "SELECT total_changes()").Scan(&n))
	return n
}

// TestEndedAllCompletesQueuedStarts: EndedAll inserts a session whose
// deferred start is still queued with its end, one row change instead of
// an insert and an update; the other queued starts are inserted open, an
// entry already in the index is updated, and a completed start the index
// refuses is reported by EndedAll alone and leaves the earlier row of its
// id alone. A waiting caller of Started and Close end the writer's window
// early.
func TestEndedAllCompletesQueuedStarts(t *testing.T) {
	defer func(w time.Duration) { deferWindow = w }(deferWindow)
	deferWindow = time.Minute // nothing is inserted unless something asks
	ctx := context.Background()
	s := openStore(t, sqliteDB(t), "sqlite", "node-a", t.TempDir())
	var ref refusals
	old := entry("old", "alice", "prod-pg", t0, "/r/old.alrec")
	must(t, s.Started(ctx, old))
	must(t, s.Started(ctx, entry("dup", "alice", "prod-pg", t0, "/r/dup.alrec")))
	changes := writerChanges(t, s)

	a := entry("a", "bob", "prod-pg", t0.Add(time.Second), "/r/a.alrec")
	for _, e := range []recording.Entry{a, entry("b", "bob", "prod-pg", t0.Add(time.Second), "/r/b.alrec")} {
		if !s.StartedLater(e, ref.for_(e.Info.ID)) {
			t.Fatalf("StartedLater(%s) declined", e.Info.ID)
		}
	}
	a.End, a.EndReason, a.Frames, a.Bytes, a.Path = t0.Add(2*time.Second), "client terminated", 7, 900, "/r/a-final.alrec"
	old.End, old.EndReason, old.Frames, old.Bytes = t0.Add(3*time.Second), "done", 3, 400
	must(t, s.EndedAll(ctx, []recording.Entry{a, old}))
	if got := writerChanges(t, s) - changes; got != 3 {
		t.Errorf("%d row changes for two starts and two ends, one of them queued; want 3 (two inserts, one update)", got)
	}
	if x, err := s.Get(ctx, "a"); err != nil || x.Active() || !x.End.Equal(a.End) || x.EndReason != a.EndReason ||
		x.Frames != 7 || x.Bytes != 900 || x.Path != "/r/a-final.alrec" || x.Identity.Name != "bob" || !x.Start.Equal(a.Info.Start) {
		t.Errorf("completed start: %+v, %v", x, err)
	}
	if x, err := s.Get(ctx, "b"); err != nil || !x.Active() {
		t.Errorf("queued start not ended: %+v, %v", x, err)
	}
	if x, err := s.Get(ctx, "old"); err != nil || x.Active() || x.EndReason != "done" || x.Frames != 3 {
		t.Errorf("entry inserted earlier: %+v, %v", x, err)
	}

	// The index refuses a completed start: EndedAll says so, the
	// session's refused callback (it has ended) is not called, and the
	// first row of the id stays as it was.
	dup := entry("dup", "mallory", "prod-pg", t0.Add(time.Second), "/r/dup2.alrec")
	if !s.StartedLater(dup, ref.for_("dup")) {
		t.Fatal("StartedLater(dup) declined")
	}
	dup.End, dup.EndReason = t0.Add(2*time.Second), "done"
	err := s.EndedAll(ctx, []recording.Entry{dup})
	if err == nil || !strings.Contains(err.Error(), "index session dup") {
		t.Errorf("EndedAll of a refused completed start = %v", err)
	}
	if x, _ := s.Get(ctx, "dup"); x.Identity.Name != "alice" || !x.Active() {
		t.Errorf("earlier row of the id changed: %+v", x)
	}
	if n := ref.count(); n != 0 {
		t.Errorf("refusals %v, want none", ref.got)
	}

	// That batch inserted nothing, so the next start is synchronous
	// (StartedLater declines) and, succeeding, ends the failing state.
	if s.StartedLater(entry("sync", "carol", "prod-pg", t0, "/r/sync.alrec"), ref.for_("sync")) {
		t.Fatal("StartedLater took a start while the index was failing")
	}
	must(t, s.Started(ctx, entry("sync", "carol", "prod-pg", t0, "/r/sync.alrec")))

	// A caller of Started does not wait for the window.
	if !s.StartedLater(entry("c", "carol", "prod-pg", t0, "/r/c.alrec"), ref.for_("c")) {
		t.Fatal("StartedLater(c) declined")
	}
	time.Sleep(100 * time.Millisecond) // the writer is waiting out its window
	began := time.Now()
	must(t, s.Started(ctx, entry("d", "dave", "prod-pg", t0, "/r/d.alrec")))
	if _, err := s.Get(ctx, "c"); err != nil || time.Since(began) > 10*time.Second {
		t.Errorf("Started took %v; queued start: %v", time.Since(began), err)
	}

	// Nor does Close, which inserts what is queued.
	if !s.StartedLater(entry("e", "erin", "prod-pg", t0, "/r/e.alrec"), ref.for_("e")) {
		t.Fatal("StartedLater(e) declined")
	}
	time.Sleep(100 * time.Millisecond)
	began = time.Now()
	must(t, s.Close())
	if d := time.Since(began); d > 10*time.Second {
		t.Errorf("Close took %v", d)
	}
	if _, err := s.Get(ctx, "e"); err != nil {
		t.Errorf("start queued at Close: %v", err)
	}
}

// TestDeferredWindowFollowsEndedAll: once EndedAll has inserted the queue,
// a start queued afterwards waits its own deferWindow, not what was left of
// the window of the start before it.
func TestDeferredWindowFollowsEndedAll(t *testing.T) {
	defer func(w time.Duration) { deferWindow = w }(deferWindow)
	deferWindow = time.Second
	ctx := context.Background()
	s := openStore(t, sqliteDB(t), "sqlite", "node-a", t.TempDir())
	var ref refusals
	began := time.Now()
	x1 := entry("x1", "bob", "prod-pg", t0, "/r/x1.alrec")
	s.StartedLater(x1, ref.for_("x1"))
	time.Sleep(100 * time.Millisecond)
	x1.End, x1.EndReason = t0.Add(time.Millisecond), "done"
	must(t, s.EndedAll(ctx, []recording.Entry{x1}))
	time.Sleep(500 * time.Millisecond)
	queued := time.Now()
	s.StartedLater(entry("x2", "bob", "prod-pg", t0, "/r/x2.alrec"), ref.for_("x2"))
	time.Sleep(time.Until(began.Add(1200 * time.Millisecond)))
	_, err := s.Get(ctx, "x2")
	if time.Since(queued) < deferWindow-50*time.Millisecond {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("x2, queued %v ago, already inserted (%v): it got the rest of x1's window", time.Since(queued), err)
		}
	} else {
		t.Logf("too slow to check the window (x2 queued %v ago)", time.Since(queued))
	}
	if x, err := waitRow(s, "x2"); err != nil || !x.Active() {
		t.Errorf("x2: %+v, %v", x, err)
	}
	if ref.count() != 0 {
		t.Errorf("refusals: %v", ref.got)
	}
}
