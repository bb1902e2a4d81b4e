package index

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/airlock-gw/airlock/session/recording"
)

// execUnsynced runs one index write without waiting for the disk: on
// SQLite through a connection of the index's own that commits with
// synchronous=NORMAL (in WAL mode the commit is not fsynced; a process
// crash loses nothing, a power loss may lose the newest rows), on
// PostgreSQL in a transaction that commits with synchronous_commit off. The
// index is thus exactly as durable as the recordings it points to, which
// are not fsynced per frame either, and a session's start and end no longer
// wait on, or contend with, a journal flush (BenchmarkSessionIndexing: a
// session's two writes took about 105 µs instead of 345 µs here). The
// approvals sharing the store keep their full synchronous commits: only
// the index's own connection, never returned to the pool, is relaxed.
func (s *Store) execUnsynced(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := s.execUnsyncedAll(ctx, query, [][]any{args})
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

// execUnsyncedAll runs query once for each argument list, all in one
// transaction (one commit for the lot), as execUnsynced runs one. A failed
// statement rolls back the whole transaction.
func (s *Store) execUnsyncedAll(ctx context.Context, query string, argLists [][]any) ([]sql.Result, error) {
	if s.d == Postgres {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return nil, err
		}
		defer func() { _ = tx.Rollback() }()
		if _, err := tx.ExecContext(ctx, "SET LOCAL synchronous_commit = off"); err != nil {
			return nil, err
		}
		out, err := execEach(argLists, func(args []any) (sql.Result, error) { return tx.ExecContext(ctx, query, args...) })
		if err != nil {
			return nil, err
		}
		return out, tx.Commit()
	}
	// SQLite runs one write at a time anyway, so one connection loses no
	// concurrency.
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.wexecAll(ctx, query, argLists)
}

// wexecAll runs query once for each argument list on the index's own
// SQLite connection (wmu held), in one transaction when there are several.
// A failure drops the connection (see wexec), which rolls the transaction
// back.
func (s *Store) wexecAll(ctx context.Context, query string, argLists [][]any) ([]sql.Result, error) {
	if len(argLists) == 1 {
		res, err := s.wexec(ctx, query, argLists[0]...)
		if err != nil {
			return nil, err
		}
		s.committed()
		return []sql.Result{res}, nil
	}
	if _, err := s.wexec(ctx, "BEGIN"); err != nil {
		return nil, err
	}
	out, err := execEach(argLists, func(args []any) (sql.Result, error) { return s.wexec(ctx, query, args...) })
	if err != nil {
		return nil, err
	}
	if _, err := s.wexec(ctx, "COMMIT"); err != nil {
		return nil, err
	}
	s.committed()
	return out, nil
}

// execEach runs exec once for each argument list, stopping at the first
// error, and returns the results in order.
func execEach(argLists [][]any, exec func(args []any) (sql.Result, error)) ([]sql.Result, error) {
	out := make([]sql.Result, 0, len(argLists))
	for _, args := range argLists {
		res, err := exec(args)
		if err != nil {
			return nil, err
		}
		out = append(out, res)
	}
	return out, nil
}

// Checkpoints. In WAL mode SQLite copies the log back into the database
// (a checkpoint, with an fsync of each file) on the connection whose commit
// takes the log past wal_autocheckpoint pages: that was the index's writer,
// several times a second when many short sessions start, and every session
// starting meanwhile waited 2 to 15 ms for it (the p99 of a connect went from
// 2.7 to 14 ms with recording). The writer now leaves checkpoints to another
// connection of the pool: a PASSIVE checkpoint runs beside the writer,
// which keeps appending to the log, every checkpointEvery of its commits.
// The writer's own automatic checkpoint stays as a backstop at walBackstop
// pages, in case those checkpoints fall behind.
const (
	checkpointEvery = 64
	walBackstop     = 16384 // pages: 64 MiB of log at 4 KiB pages
)

// committed counts one commit of the writer and starts a checkpoint on
// another connection when one is due and none is running (wmu held).
func (s *Store) committed() {
	if s.commits++; s.commits < checkpointEvery || s.noCkpt || !s.checkpointing.CompareAndSwap(false, true) {
		return
	}
	s.commits = 0
	s.ckptWG.Add(1)
	go func() {
		defer s.ckptWG.Done()
		defer s.checkpointing.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var busy, logged, copied int
		if err := s.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logged, &copied); err != nil {
			s.log.Warn("session index checkpoint failed; the writer's own checkpoint remains", "err", err)
		}
		if s.checkpointed != nil {
			s.checkpointed(logged, copied)
		}
	}()
}

// wexec runs one statement on the index's own SQLite connection, opening
// and relaxing it first if needed (wmu held). A failure drops the
// connection, which may be broken; a later write takes a new one.
func (s *Store) wexec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s.wconn == nil {
		c, err := s.db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		for _, q := range []string{"PRAGMA synchronous = NORMAL", "PRAGMA wal_autocheckpoint = " + strconv.Itoa(walBackstop)} {
			if _, err := c.ExecContext(ctx, q); err != nil {
				discard(c)
				return nil, err
			}
		}
		s.wconn = c
	}
	// Prepared once per connection: parsing the SQL again at every
	// session's start and end was a third of the index's CPU.
	st := s.wstmts[query]
	if st == nil {
		var err error
		if st, err = s.wconn.PrepareContext(ctx, query); err != nil {
			s.dropConn()
			return nil, err
		}
		if s.wstmts == nil {
			s.wstmts = map[string]*sql.Stmt{}
		}
		s.wstmts[query] = st
	}
	res, err := st.ExecContext(ctx, args...)
	if err != nil {
		s.dropConn()
	}
	return res, err
}

// startReq is one session's insert waiting in Store.startQ. A caller of
// Started waits on done for err; a deferred start (StartedLater) has no
// ctx, and refused is called if its insert fails (unless EndedAll has
// completed the request, and reports its failure itself).
type startReq struct {
	queued  time.Time // when a deferred start was queued
	ctx     context.Context
	args    []any
	done    chan struct{}
	refused func(error)
	err     error
}

// failure is a failed deferred start's err, naming its session.
func (r *startReq) failure() error {
	return fmt.Errorf("index session %s: %w", r.args[argID], r.err)
}

// insertStarted inserts a starting session's row on SQLite, committing it
// together with the inserts of sessions that start meanwhile (group
// commit): the caller queues its row and waits while the index's writer
// goroutine inserts every queued row in one transaction. Each insert of a
// session wrote and checksummed some six pages into the WAL (the row and
// five indexes); rows that start together share those pages and one
// commit. The caller still waits for its own row, so a session the index
// cannot register is refused as before.
//
// The inserts run on one long-lived goroutine rather than on the caller's:
// SQLite (C translated to Go) needs a deep stack, and a new connection's
// goroutine grew and copied its stack several times for its one insert,
// about a sixth of the insert's CPU.
func (s *Store) insertStarted(ctx context.Context, args []any) error {
	req := &startReq{ctx: ctx, args: args, done: make(chan struct{})}
	if !s.queueStart(req) {
		return errStoreClosed
	}
	// Not abandoned when ctx ends: the writer's outcome, whatever it is,
	// is the caller's, so that a row is never inserted for a session that
	// was refused. The writer gives up on ctx itself.
	<-req.done
	return req.err
}

// queueStart queues req for the writer, starting it if needed; it reports
// false when the store is closed.
func (s *Store) queueStart(req *startReq) bool {
	s.qmu.Lock()
	if s.closed {
		s.qmu.Unlock()
		return false
	}
	s.startQ = append(s.startQ, req)
	if s.wake == nil {
		s.wake, s.hurry, s.writerDone = make(chan struct{}, 1), make(chan struct{}, 1), make(chan struct{})
		go s.startWriter(s.wake, s.writerDone)
	}
	// Only the first start of a batch wakes the writer, and a full batch
	// or a waiting caller cuts its window short: a wake per start was a
	// scheduler round trip per session.
	// The signals are sent under qmu, so that the flush that takes this
	// request (under qmu too) also takes its hurry token: a token sent
	// after that flush would cut a later batch's window short.
	first, urgent := len(s.startQ) == 1, len(s.startQ) >= deferBatch || req.ctx != nil
	if first || urgent {
		signal(s.wake)
	}
	if urgent {
		signal(s.hurry)
	}
	s.qmu.Unlock()
	return true
}

// signal sends on a channel of capacity one unless a send is pending.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

var errStoreClosed = errors.New("session index is closed")

// Deferred starts wait up to deferWindow for others to share their
// transaction: the writer inserts them when deferBatch are queued, when a
// caller of Started is waiting, or when the window ends, and EndedAll
// inserts them first whenever it runs. The recording factory calls
// EndedAll once per flush interval (1 s by default), after its batched
// fsync, so a session that starts and ends within one interval, as with a
// client that connects per request, costs the index one insert of its
// whole row instead of an insert now and an update later (and no commit of
// its own). deferWindow, longer than that interval, only bounds the wait
// when no session ends. Each start has deferTimeout for its insert, and
// inserts run in transactions of at most insertChunk rows.
const (
	deferBatch   = 4096
	deferTimeout = 10 * time.Second
	insertChunk  = 256
)

// deferWindow is a variable for the tests.
var deferWindow = 2 * time.Second

// startWriter inserts queued starts until the store is closed, then fails
// what is still queued.
func (s *Store) startWriter(wake <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	for range wake {
		s.gather()
		if !s.flushStarts() {
			return
		}
	}
}

// gather lets deferred starts accumulate, each for at most deferWindow
// after it was queued: nobody waits for them, and a batch of them costs
// little more than one of them. A caller of Started, a full batch or Close
// ends the wait at once: each sends on hurry, which holds a token from
// then until the flush that takes the queue. When EndedAll has inserted
// the queue meanwhile, the wait goes on for the starts queued since.
func (s *Store) gather() {
	for {
		s.qmu.Lock()
		var left time.Duration
		if !s.closed && len(s.startQ) > 0 {
			left = time.Until(s.startQ[0].queued.Add(deferWindow))
		}
		hurry := s.hurry
		s.qmu.Unlock()
		if left <= 0 {
			return
		}
		t := time.NewTimer(left)
		select {
		case <-t.C:
		case <-hurry:
			t.Stop()
			return
		}
	}
}

// completeQueued gives each entry of es whose deferred start is still
// queued its end (completeArgs), so that the start's insert writes the
// whole row, and returns the other entries and the completed requests.
// A completed request's failure is EndedAll's to report.
func (s *Store) completeQueued(es []recording.Entry) (rest []recording.Entry, whole []*startReq) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if len(s.startQ) == 0 {
		return es, nil
	}
	queued := make(map[string]*startReq, len(s.startQ))
	for _, r := range s.startQ {
		if r.ctx == nil {
			queued[r.args[argID].(string)] = r
		}
	}
	rest = make([]recording.Entry, 0, len(es))
	for _, e := range es {
		r := queued[e.Info.ID]
		if r == nil {
			rest = append(rest, e)
			continue
		}
		delete(queued, e.Info.ID) // an id ended twice is completed once, and reported by the update
		completeArgs(r.args, e)
		r.refused = nil
		whole = append(whole, r)
	}
	return rest, whole
}

// flushStarts inserts every queued start, and reports false once the store
// is closed (what was queued then fails with errStoreClosed).
func (s *Store) flushStarts() bool {
	s.wmu.Lock()
	s.qmu.Lock()
	batch := s.startQ
	s.startQ = nil
	closed := s.closed
	select {
	case <-s.hurry: // this flush serves whoever hurried the writer
	default:
	}
	s.qmu.Unlock()
	if closed {
		s.wmu.Unlock()
		for _, r := range batch {
			r.err = errStoreClosed
		}
		settle(batch)
		return false
	}
	// A caller that gave up before its batch ran is not inserted.
	live := batch[:0:0]
	for _, r := range batch {
		if r.ctx != nil {
			r.err = r.ctx.Err()
		}
		if r.err == nil {
			live = append(live, r)
		}
	}
	if len(live) > 0 {
		ok := false
		for len(live) > 0 {
			chunk := live[:min(len(live), insertChunk)]
			live = live[len(chunk):]
			ctx, cancel := batchContext(chunk)
			s.insertAll(ctx, chunk)
			cancel()
			for _, r := range chunk {
				ok = ok || r.err == nil
			}
		}
		s.failing.Store(!ok)
	}
	s.wmu.Unlock()
	settle(batch)
	return true
}

// settle hands each request its outcome: a caller of Started is woken, a
// deferred start that failed is reported.
func settle(batch []*startReq) {
	for _, r := range batch {
		if r.done != nil {
			close(r.done)
		} else if r.err != nil && r.refused != nil {
			r.refused(r.failure())
		}
	}
}

// batchContext returns a context that ends when the last of the batch's
// callers' contexts would (a deferred start allows deferTimeout): one
// caller's deadline does not cut the others short.
func batchContext(batch []*startReq) (context.Context, context.CancelFunc) {
	var last time.Time
	for _, r := range batch {
		d, ok := time.Now().Add(deferTimeout), true
		if r.ctx != nil {
			d, ok = r.ctx.Deadline()
		}
		if !ok {
			return context.WithCancel(context.Background())
		}
		if d.After(last) {
			last = d
		}
	}
	return context.WithDeadline(context.Background(), last)
}

// insertAll inserts the rows of batch and sets each one's err (wmu held),
// in one transaction when there are several. If that fails (a duplicate
// id, say), each row is tried on its own, so that one bad row refuses only
// its own session.
func (s *Store) insertAll(ctx context.Context, batch []*startReq) {
	if len(batch) > 1 {
		args := make([][]any, len(batch))
		for i, r := range batch {
			args[i] = r.args
		}
		if _, err := s.wexecAll(ctx, startedQuery, args); err == nil {
			return
		}
	}
	for _, r := range batch {
		_, r.err = s.wexecAll(ctx, startedQuery, [][]any{r.args})
	}
}

// dropConn closes the index's connection and its statements (wmu held).
func (s *Store) dropConn() {
	for _, st := range s.wstmts {
		_ = st.Close()
	}
	s.wstmts = nil
	discard(s.wconn)
	s.wconn = nil
}

// discard closes a connection the index relaxed without returning it to
// the pool, where the approvals store would get it.
func discard(c *sql.Conn) {
	_ = c.Raw(func(any) error { return driver.ErrBadConn })
	_ = c.Close()
}

// Close releases the index's own connection; the database stays the
// caller's.
func (s *Store) Close() error {
	s.flushStarts() // deferred starts are inserted, not refused
	s.qmu.Lock()
	s.closed = true
	wake, hurry, done := s.wake, s.hurry, s.writerDone
	s.qmu.Unlock()
	if wake != nil {
		signal(wake)
		signal(hurry)
		<-done
	}
	s.wmu.Lock()
	s.noCkpt = true
	if s.wconn != nil {
		s.dropConn()
	}
	s.wmu.Unlock()
	s.ckptWG.Wait()
	return nil
}
