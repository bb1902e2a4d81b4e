package redis

import (
	"errors"
	"sync"
	"time"

	"github.com/airlock-gw/airlock/protocols/redis/resp"
)

var errSessionEnded = errors.New("session ended")

// pendKind is what a queued entry stands for.
type pendKind uint8

const (
	// pkReply: the upstream owes one reply, relayed to the client.
	pkReply pendKind = iota
	// pkInternal: the upstream owes one reply to a command Airlock sent
	// on its own (the re-authentication after RESET, a HELLO's protocol
	// switch); it is read, not relayed, and an error ends the session.
	pkInternal
	// pkPubSub: a (un)subscribe command, answered by confirmations that
	// are pub/sub messages (pushes in RESP3); its first confirmation, or
	// an error in its place, resolves the entry.
	pkPubSub
	// pkLocal: a reply Airlock made, written when its turn comes.
	pkLocal
)

// after is what a reply changes once it is out.
type after uint8

const (
	afterNothing after = iota
	// afterMonitor: MONITOR's +OK; everything later is out of band.
	afterMonitor
	// afterReset: RESET's +RESET; the upstream left pub/sub and monitor
	// modes.
	afterReset
)

// pending is one entry of the queue, pushed by the client reader in the
// order it forwarded commands.
type pending struct {
	kind  pendKind
	after after
	start time.Time
	// shape names a hash reply's fields for masking.
	shape shape
	// replace is the reply the client gets instead of the upstream's: the
	// EXECABORT that stands for a transaction Airlock discarded upstream.
	replace []byte
	// confirms is the confirmation kind a pkPubSub entry waits for
	// ("subscribe", "punsubscribe"…).
	confirms string
	// expect is how many confirmations a pkPubSub entry still waits for.
	expect int
	// switchTo is the protocol version an internal HELLO switches the
	// upstream to.
	switchTo resp.Proto
	// local is a pkLocal entry's reply.
	local []byte
}

// pendingQueue is a FIFO shared by the session's two goroutines. owed
// counts the entries that wait for an upstream reply.
type pendingQueue struct {
	mu    sync.Mutex
	items []pending
	head  int
	owed  int
}

func (q *pendingQueue) push(p pending) {
	q.mu.Lock()
	q.pushLocked(p)
	q.mu.Unlock()
}

func (q *pendingQueue) pushLocked(p pending) {
	if q.head > 64 && q.head*2 > len(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items = q.items[:n]
		q.head = 0
	}
	q.items = append(q.items, p)
	if p.kind != pkLocal {
		q.owed++
	}
}

// pushLocal queues a reply Airlock made when the upstream still owes
// replies to earlier commands, and reports whether it did; when it did
// not, the caller writes the reply at once. The caller holds the client
// writer's lock, so the upstream reader cannot be writing meanwhile.
func (q *pendingQueue) pushLocal(b []byte) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.owed == 0 {
		return false
	}
	q.pushLocked(pending{kind: pkLocal, local: b})
	return true
}

// peek returns a copy of the head; ok is false when the queue is empty.
func (q *pendingQueue) peek() (pending, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		return pending{}, false
	}
	return q.items[q.head], true
}

// pop drops the head.
func (q *pendingQueue) pop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		return
	}
	if q.items[q.head].kind != pkLocal {
		q.owed--
	}
	q.items[q.head] = pending{}
	q.head++
	if q.head == len(q.items) {
		q.items = q.items[:0]
		q.head = 0
	}
}

// confirm takes a pub/sub confirmation of kind: it resolves the head
// when the head waits for one of that kind and it was the last expected.
// It reports whether the head waited for it.
func (q *pendingQueue) confirm(kind string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		return false
	}
	p := &q.items[q.head]
	if p.kind != pkPubSub || p.confirms != kind {
		return false
	}
	if p.expect--; p.expect <= 0 {
		q.owed--
		q.items[q.head] = pending{}
		q.head++
	}
	return true
}

// takeLocals pops the replies Airlock made that are now at the head.
func (q *pendingQueue) takeLocals(dst [][]byte) [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.head < len(q.items) && q.items[q.head].kind == pkLocal {
		dst = append(dst, q.items[q.head].local)
		q.items[q.head] = pending{}
		q.head++
	}
	if q.head == len(q.items) {
		q.items = q.items[:0]
		q.head = 0
	}
	return dst
}
