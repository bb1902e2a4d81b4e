package index

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strconv"
	"time"
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
// ctx, and refused is called if its insert fails.
type startReq struct {
	ctx     context.Context
	args    []any
	done    chan struct{}
	refused func(error)
	err     error
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
		s.wake, s.writerDone = make(chan struct{}, 1), make(chan struct{})
		go s.startWriter(s.wake, s.writerDone)
	}
	s.qmu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default: // the writer is already due to look at the queue
	}
	return true
}

var errStoreClosed = errors.New("session index is closed")

// Deferred starts wait deferWindow for others to share their transaction,
// unless deferBatch of them are already queued when the writer looks (more
// may join while it waits); each has deferTimeout for its insert.
const (
	deferBatch   = 64
	deferTimeout = 10 * time.Second
)

// deferWindow is a variable for the tests.
var deferWindow = 5 * time.Millisecond

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

// gather lets deferred starts accumulate for deferWindow when only they
// are queued: nobody waits for them, and a batch of them costs little more
// than one of them. A caller of Started is served at once.
func (s *Store) gather() {
	s.qmu.Lock()
	wait := !s.closed && len(s.startQ) > 0 && len(s.startQ) < deferBatch
	for _, r := range s.startQ {
		wait = wait && r.ctx == nil
	}
	s.qmu.Unlock()
	if wait {
		time.Sleep(deferWindow)
	}
}

// flushStarts inserts every queued start, and reports false once the store
// is closed (what was queued then fails with errStoreClosed).
func (s *Store) flushStarts() bool {
	s.wmu.Lock()
	s.qmu.Lock()
	batch := s.startQ
	s.startQ = nil
	closed := s.closed
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
		ctx, cancel := batchContext(live)
		s.insertAll(ctx, live)
		cancel()
		ok := false
		for _, r := range live {
			ok = ok || r.err == nil
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
		} else if r.err != nil {
			r.refused(r.err)
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
	wake, done := s.wake, s.writerDone
	s.qmu.Unlock()
	if wake != nil {
		select {
		case wake <- struct{}{}:
		default:
		}
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
