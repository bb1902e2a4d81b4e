package mysql

import (
	"sync"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/mysql/wire"
	"github.com/airlock-gw/airlock/session"
)

// lastStatement is the statement id MariaDB clients send to mean "the
// statement prepared last", so that a prepare and its execution can be sent
// together.
const lastStatement = 0xFFFFFFFF

// maxStatements bounds the prepared statements a session may hold, as the
// server's max_prepared_stmt_count does for all sessions.
const maxStatements = 16384

// statement is a prepared statement of the session, created by the
// upstream reader when the upstream's PREPARE_OK arrives (before the client
// can know its id) and used by the client reader for each command naming
// it.
type statement struct {
	id  uint32
	cmd *protocols.Command // the COM_STMT_PREPARE that made it
	// approved says a reviewer's approval let the prepare through: the
	// first execution runs on it, each later one is checked again.
	approved bool

	// Client reader only.
	wire     wire.Statement
	grant    *session.Grant
	runs     int
	exec     *protocols.Command // cmd as an execution, made on the first run
	recorded string             // the text the recording keeps for exec

	// Upstream reader only: the columns of an open cursor, for its fetches.
	cursorCols  []protocols.Column
	cursorTypes []byte
}

// statements are a session's prepared statements by id.
type statements struct {
	mu   sync.Mutex
	byID map[uint32]*statement
	// last is the statement prepared last, nil when the last prepare
	// failed: what id lastStatement means to the server.
	last *statement
}

func (s *statements) add(st *statement) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID == nil {
		s.byID = map[uint32]*statement{}
	}
	if len(s.byID) >= maxStatements {
		return false
	}
	s.byID[st.id] = st
	s.last = st
	return true
}

func (s *statements) get(id uint32) *statement {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == lastStatement {
		return s.last
	}
	return s.byID[id]
}

func (s *statements) failed() {
	s.mu.Lock()
	s.last = nil
	s.mu.Unlock()
}

func (s *statements) remove(id uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.byID[id]; st != nil && s.last == st {
		s.last = nil
	}
	delete(s.byID, id)
}

// reset forgets every statement: COM_RESET_CONNECTION deallocates them.
func (s *statements) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.byID)
	s.last = nil
}

// lookup is the decoder's view of the statements (wire.Statements).
func (s *statements) lookup(id uint32) (*wire.Statement, bool) {
	st := s.get(id)
	if st == nil {
		return nil, false
	}
	return &st.wire, true
}
