package transport

import (
	"net"
	"time"
)

// Admission is a connection's place among the unauthenticated ones, handed
// to the Server's Handler.
type Admission struct {
	server     *Server
	conn       net.Conn
	state      admissionState // guarded by server.mu
	prev, next *Admission     // in server.waiting while state is waiting
}

type admissionState uint8

const (
	waiting       admissionState = iota
	authenticated                // Authenticated took it out of the queue
	dropped                      // closed for room or at shutdown
	left                         // its handler returned first
)

// Authenticated takes the connection out of the unauthenticated ones and
// clears its deadlines, the handshake's and any the handler set: from here
// on the engine sets its own. It reports whether the connection is still
// open, false once it was dropped to make room or at shutdown. It may be
// called any number of times.
func (a *Admission) Authenticated() bool {
	s := a.server
	s.mu.Lock()
	if a.state != waiting {
		ok := a.state == authenticated
		s.mu.Unlock()
		return ok
	}
	s.waiting.remove(a)
	a.state = authenticated
	s.mu.Unlock()
	_ = a.conn.SetDeadline(time.Time{})
	return true
}

// admit sets the handshake deadline on a new connection and queues it,
// closing the oldest unauthenticated connection first when the queue is
// full. A client still gets in during a flood of silent connections, even
// from its own address: the flood's oldest go first, and each new one
// lives until limit more have arrived or its deadline passes.
func (s *Server) admit(conn net.Conn, limit int, timeout time.Duration) (*Admission, bool) {
	_ = conn.SetDeadline(time.Now().Add(timeout))
	a := &Admission{server: s, conn: conn}
	var oldest *Admission
	s.mu.Lock()
	if s.waiting.n >= limit {
		oldest = s.waiting.oldest()
		s.drop(oldest)
	}
	s.waiting.push(a)
	s.mu.Unlock()
	if oldest == nil {
		return a, false
	}
	_ = oldest.conn.Close()
	if s.OnDrop != nil {
		s.OnDrop()
	}
	return a, true
}

// leave takes a connection whose handler returned out of the queue.
func (a *Admission) leave() {
	a.server.mu.Lock()
	defer a.server.mu.Unlock()
	if a.state == waiting {
		a.server.waiting.remove(a)
		a.state = left
	}
}

// dropAll closes every unauthenticated connection when Serve ends: no engine
// knows of them yet, so nothing else would end them before their deadlines.
func (s *Server) dropAll() {
	var conns []net.Conn
	s.mu.Lock()
	for s.waiting.n > 0 {
		a := s.waiting.oldest()
		s.drop(a)
		conns = append(conns, a.conn)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// drop takes a out of the queue for closing; s.mu is held.
func (s *Server) drop(a *Admission) {
	s.waiting.remove(a)
	a.state = dropped
}

// queue is a doubly linked list of Admissions in arrival order, linked
// through the Admissions themselves so that queueing one allocates nothing
// and taking one out from the middle (it authenticated) is O(1).
type queue struct {
	head Admission // head.next is the oldest, head.prev the newest
	n    int
}

func (q *queue) push(a *Admission) {
	if q.head.next == nil {
		q.head.next, q.head.prev = &q.head, &q.head
	}
	a.prev, a.next = q.head.prev, &q.head
	a.prev.next = a
	q.head.prev = a
	q.n++
}

func (q *queue) remove(a *Admission) {
	a.prev.next = a.next
	a.next.prev = a.prev
	a.prev, a.next = nil, nil
	q.n--
}

// oldest returns the first Admission queued, nil when there is none.
func (q *queue) oldest() *Admission {
	if q.n == 0 {
		return nil
	}
	return q.head.next
}
