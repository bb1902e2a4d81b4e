package mysql

import (
	"sync"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

// pendKind is the shape of the response a command is owed.
type pendKind uint8

const (
	// pkQuery: COM_QUERY; text result sets, OK or ERR, possibly a LOCAL
	// INFILE request, repeated while the status says more results follow.
	pkQuery pendKind = iota
	// pkExecute: COM_STMT_EXECUTE; the same with binary rows, or a cursor.
	pkExecute
	// pkFetch: COM_STMT_FETCH; binary rows of an open cursor.
	pkFetch
	// pkPrepare: COM_STMT_PREPARE; PREPARE_OK and its definitions, or ERR.
	pkPrepare
	// pkFieldList: COM_FIELD_LIST; column definitions up to an EOF, or ERR.
	pkFieldList
	// pkSimple: one packet (OK, ERR, EOF or COM_STATISTICS's text).
	pkSimple
	// pkLocal: Airlock's own answer, written when the answers owed before
	// it are done; the upstream owes nothing for it.
	pkLocal
)

// pending is one response owed to the client, queued by the client reader
// in the order the commands came.
type pending struct {
	kind  pendKind
	start time.Time
	// reply is a pkLocal's framed packets.
	reply []byte
	// files are the LOCAL INFILE names the query's statements may ask the
	// client for, in order (pkQuery).
	files []string
	// stmt is the statement of a pkExecute, pkFetch or pkPrepare.
	stmt *statement
	// cursor says a pkExecute asked for a cursor.
	cursor bool
	// prepared is what a pkPrepare prepares: its command, and whether a
	// reviewer's approval let it through.
	prepared *protocols.Command
	approved bool
	// code is the command byte of a pkSimple; schema the database a
	// COM_INIT_DB switches to.
	code   byte
	schema string
}

// pendingQueue is a FIFO shared by the session's two goroutines. Its lock
// is taken before the client writer's, never the other way.
type pendingQueue struct {
	mu    sync.Mutex
	items []pending
	head  int
	// idle is signalled each time the queue becomes empty.
	idle *sync.Cond
}

func newPendingQueue() *pendingQueue {
	q := &pendingQueue{}
	q.idle = sync.NewCond(&q.mu)
	return q
}

// push queues p. For a pkLocal with nothing owed before it, write is
// called at once under the queue's lock instead, so that it cannot pass an
// answer the upstream reader is about to finish.
func (q *pendingQueue) push(p pending, write func([]byte) error) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if p.kind == pkLocal && q.head == len(q.items) {
		return write(p.reply)
	}
	if q.head > 64 && q.head*2 > len(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items = q.items[:n]
		q.head = 0
	}
	q.items = append(q.items, p)
	return nil
}

// peek returns the head; ok is false when nothing is owed.
func (q *pendingQueue) peek() (pending, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		return pending{}, false
	}
	return q.items[q.head], true
}

// finish drops the head, whose response is complete, and writes the
// pkLocal answers that were waiting behind it.
func (q *pendingQueue) finish(write func([]byte) error) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head < len(q.items) {
		q.items[q.head] = pending{}
		q.head++
	}
	var err error
	for q.head < len(q.items) && q.items[q.head].kind == pkLocal {
		if err == nil {
			err = write(q.items[q.head].reply)
		}
		q.items[q.head] = pending{}
		q.head++
	}
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
		q.idle.Broadcast()
	}
	return err
}

// busy reports whether a response is owed.
func (q *pendingQueue) busy() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.head < len(q.items)
}

// waitIdle blocks until nothing is owed or stop reports true (checked each
// time the queue changes; wake it with wake).
func (q *pendingQueue) waitIdle(stop func() bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.head < len(q.items) && !stop() {
		q.idle.Wait()
	}
}

// wake wakes waitIdle, to check its stop condition.
func (q *pendingQueue) wake() {
	q.mu.Lock()
	q.idle.Broadcast()
	q.mu.Unlock()
}
