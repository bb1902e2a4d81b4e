package postgres

import (
	"sync"
	"time"
)

// pendKind names the client message whose response the upstream still owes.
type pendKind uint8

const (
	pkQuery     pendKind = iota // simple query: results... ReadyForQuery
	pkParse                     // ParseComplete
	pkBind                      // BindComplete
	pkDescribeS                 // ParameterDescription, RowDescription | NoData
	pkDescribeP                 // RowDescription | NoData
	pkExecute                   // rows..., CommandComplete | PortalSuspended | EmptyQueryResponse
	pkClose                     // CloseComplete
	pkSync                      // ReadyForQuery
)

// pending is one response the upstream owes, queued by the client reader in
// the order it forwarded the messages.
type pending struct {
	kind pendKind
	// internal marks a message Airlock sent on its own (a Close of a
	// statement it made); its response is consumed, not forwarded.
	internal bool
	name     string  // statement (Parse, Describe S, Close S) or portal name
	stmt     string  // Bind: the statement bound
	formats  []int16 // Bind: result column format codes
	close    byte    // Close: 'S' or 'P'
	start    time.Time
	// refusal replaces the upstream's error for a statement Airlock refused.
	refusal *pgError
	// copies are the COPY ... TO STDOUT statements of a Query or an
	// Execute, for masking their lines.
	copies *copyList
	// undo restores the client reader's view of statements when PostgreSQL
	// rejects or skips the message (a Parse or a Close); the client reader
	// runs it.
	undo func()
}

// copyList holds a command's COPY statements; the upstream reader takes
// them in order as each CopyOutResponse arrives.
type copyList struct {
	specs []*copySpec
	bad   bool // the text looked like COPY but did not parse
	next  int
}

// take returns the next COPY statement, or nil when it is not known.
func (l *copyList) take() *copySpec {
	if l == nil || l.bad || l.next >= len(l.specs) {
		return nil
	}
	l.next++
	return l.specs[l.next-1]
}

// pendingQueue is a FIFO shared by the two session goroutines.
type pendingQueue struct {
	mu    sync.Mutex
	items []pending
	head  int
}

func (q *pendingQueue) push(p pending) {
	q.mu.Lock()
	if q.head > 64 && q.head*2 > len(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items = q.items[:n]
		q.head = 0
	}
	q.items = append(q.items, p)
	q.mu.Unlock()
}

// peek returns a copy of the head; ok is false when nothing is owed.
func (q *pendingQueue) peek() (pending, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		return pending{}, false
	}
	return q.items[q.head], true
}

// empty reports whether the upstream owes nothing.
func (q *pendingQueue) empty() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.head == len(q.items)
}

func (q *pendingQueue) pop() (pending, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		return pending{}, false
	}
	p := q.items[q.head]
	q.items[q.head] = pending{}
	q.head++
	if q.head == len(q.items) {
		q.items = q.items[:0]
		q.head = 0
	}
	return p, true
}

// skipToSync drops what an upstream error made the server skip: every entry
// up to, not including, the next Sync. PostgreSQL discards every message,
// a simple Query included, until Sync after an extended-protocol error.
func (q *pendingQueue) skipToSync(each func(*pending)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.head < len(q.items) {
		if q.items[q.head].kind == pkSync {
			return
		}
		each(&q.items[q.head])
		q.items[q.head] = pending{}
		q.head++
	}
}
