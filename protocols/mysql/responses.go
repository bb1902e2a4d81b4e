package mysql

import (
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/mysql/wire"
)

// prepareResponse reads a COM_STMT_PREPARE's response: the PREPARE_OK
// makes the statement known by id before the client learns it.
func (s *relay) prepareResponse(p wire.Packet) error {
	r := &s.res
	if r.phase == phCount {
		if err := s.relayPacket(p); err != nil {
			return err
		}
		if r.left--; r.left == 0 {
			return s.done()
		}
		return nil
	}
	if wire.IsERR(p.Payload) {
		return s.errorPacket(p)
	}
	ok, err := wire.ParsePrepareOK(p.Payload)
	if err != nil {
		return badUpstream("prepare OK")
	}
	st := &statement{id: ok.StatementID, cmd: r.head.prepared, approved: r.head.approved}
	st.wire.Params = int(ok.Params)
	if !s.stmts.add(st) {
		return myError(wire.CodeGateway, "Airlock ends the session: it holds too many prepared statements")
	}
	for _, n := range []int{int(ok.Params), int(ok.Columns)} {
		if n > 0 {
			r.left += n
			if s.caps&mysql.CLIENT_DEPRECATE_EOF == 0 {
				r.left++
			}
		}
	}
	if err := s.relayPacket(p); err != nil {
		return err
	}
	if r.left == 0 {
		return s.done()
	}
	r.phase = phCount
	return nil
}

// simpleResponse relays a one-packet response and applies what it did.
func (s *relay) simpleResponse(p wire.Packet) error {
	if wire.IsERR(p.Payload) {
		return s.errorPacket(p)
	}
	if len(p.Payload) > 0 && p.Payload[0] == mysql.OK_HEADER && s.res.head.code != mysql.COM_STATISTICS {
		if ok, err := wire.ParseOK(p.Payload, s.caps); err == nil {
			s.status.Store(uint32(ok.Status))
		}
		if s.res.head.code == mysql.COM_RESET_CONNECTION {
			s.stmts.reset()
		}
	}
	return s.finish(p)
}

// fileRequest relays the upstream's request for a client file when the
// statement running asked for that very file; any other request is
// refused: the upstream is told the file is empty, the client gets an
// error, and the rest of the response is dropped.
func (s *relay) fileRequest(p wire.Packet) error {
	r := &s.res
	name := string(p.Payload[1:])
	if r.head.kind == pkQuery && len(r.files) > 0 && r.files[0] == name && r.shift == 0 {
		r.files = r.files[1:]
		s.file.set(true)
		return s.relayPacket(p)
	}
	s.log.Warn("refused an upstream's request for a client file the statement did not ask for")
	empty, _ := wire.AppendPacket(nil, p.Seq+1, nil)
	if err := s.writeUpstream(empty, true); err != nil {
		return err
	}
	e := myError(wire.CodeNotSupported, "Airlock refused the upstream's request for local file '%s': the statement did not ask for it", name)
	if err := s.end(protocols.Result{Error: e.Message, Code: e.State}); err != nil {
		return err
	}
	if err := s.writeClient(errPacket(p.Seq+r.shift, e), false); err != nil {
		return err
	}
	r.discard = true
	return nil
}
