package mysql

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/mysql/wire"
	"github.com/airlock-gw/airlock/session"
	sqlmysql "github.com/airlock-gw/airlock/sqlrisk/mysql"
)

// errStop ends the client loop once the session has been ended.
var errStop = errors.New("stop")

// clientLoop reads client commands, decides and forwards them. It owns the
// client socket's read side and writes commands upstream.
func (s *relay) clientLoop(ctx context.Context) {
	for {
		p, err := s.clientIn.Next()
		if err != nil {
			if handled, ended := s.woken(err); handled {
				if ended {
					return
				}
				continue
			}
			var tl *wire.TooLargeError
			switch {
			case errors.As(err, &tl):
				s.lingerOnError(myError(codeTooLarge, "Got a packet bigger than 'max_allowed_packet' bytes (Airlock's mysql.max_packet_size is %d)", tl.Limit),
					"packet too large")
			case s.isEnded():
			case isClosed(err):
				s.clientGone()
			default:
				s.terminate(myError(codeMalformed, "Malformed communication packet"), "protocol violation")
			}
			return
		}
		if s.engine.draining.Load() && !s.file.get() && s.drained() {
			return // the packet is not forwarded
		}
		if s.file.get() {
			err = s.fileData(p)
		} else {
			err = s.command(ctx, p)
		}
		if err == nil && s.clientR.Buffered() == 0 {
			err = s.flushUpstream()
		}
		if err != nil {
			var me *mysql.MyError
			switch {
			case errors.Is(err, errStop):
			case errors.As(err, &me):
				s.terminate(me, me.Message)
			case s.isEnded():
			default:
				s.flow.UpstreamError()
				s.terminate(upstreamLost(s.flow.Conn.Name), "upstream write failed")
			}
			return
		}
	}
}

// clientGone ends a session whose client went away. A command still
// running upstream is killed: the server would otherwise run it to its
// end, as it notices a closed client only when it writes.
func (s *relay) clientGone() {
	if s.pending.busy() {
		s.killInBackground(true)
	}
	s.terminate(nil, "client disconnected")
}

// local queues Airlock's own answer to the command just read, behind the
// answers owed before it.
func (s *relay) local(reply []byte) error {
	return s.pending.push(pending{kind: pkLocal, reply: reply}, s.writeClientNow)
}

// localError answers the command just read with e.
func (s *relay) localError(e *mysql.MyError) error { return s.local(errPacket(1, e)) }

// localOK answers the command just read with an OK packet.
func (s *relay) localOK() error {
	status := uint16(s.status.Load()) &^ (mysql.SERVER_MORE_RESULTS_EXISTS | mysql.SERVER_SESSION_STATE_CHANGED)
	out, _ := wire.AppendPacket(nil, 1, wire.AppendOK(nil, &wire.OK{Status: status}, s.caps))
	return s.local(out)
}

// forward sends the command upstream, owing the client a response of p's
// kind. p is queued first: the upstream reader must know what it reads.
func (s *relay) forward(raw []byte, p pending) error {
	p.start = time.Now()
	if err := s.pending.push(p, nil); err != nil {
		return err
	}
	return s.writeUpstream(raw, false)
}

// statementCommands name a prepared statement by id in their first four
// bytes after the command byte.
var statementCommands = map[byte]bool{
	mysql.COM_STMT_EXECUTE: true, mysql.COM_STMT_SEND_LONG_DATA: true, mysql.COM_STMT_CLOSE: true,
	mysql.COM_STMT_RESET: true, mysql.COM_STMT_FETCH: true,
}

// command handles one client command.
func (s *relay) command(ctx context.Context, p wire.Packet) error {
	if p.Seq != 0 {
		return myError(codeOutOfOrder, "Got packets out of order")
	}
	if len(p.Payload) == 0 {
		return s.localError(myError(codeMalformed, "Malformed communication packet: empty command"))
	}
	if len(p.Payload) >= 5 && statementCommands[p.Payload[0]] && binary.LittleEndian.Uint32(p.Payload[1:]) == lastStatement {
		var ok bool
		if p, ok = s.resolveLast(p); !ok {
			if p.Payload[0] == mysql.COM_STMT_CLOSE || p.Payload[0] == mysql.COM_STMT_SEND_LONG_DATA {
				return nil // no response: the server ignores them too
			}
			return s.localError(myError(codeUnknownStmt, "Unknown prepared statement handler (%d) given to Airlock", uint32(lastStatement)))
		}
	}
	cmd, err := wire.DecodeCommand(p.Payload, s.caps, s.stmts.lookup)
	if err != nil {
		if statementCommands[p.Payload[0]] && len(p.Payload) >= 5 && s.stmts.get(binary.LittleEndian.Uint32(p.Payload[1:])) == nil {
			if p.Payload[0] == mysql.COM_STMT_CLOSE || p.Payload[0] == mysql.COM_STMT_SEND_LONG_DATA {
				return nil
			}
			return s.localError(myError(codeUnknownStmt, "Unknown prepared statement handler (%d) given to Airlock", binary.LittleEndian.Uint32(p.Payload[1:])))
		}
		return s.localError(myError(codeMalformed, "Malformed communication packet: %v", err))
	}
	switch c := cmd.(type) {
	case *wire.Query:
		return s.onQuery(ctx, c, p)
	case *wire.Prepare:
		return s.onPrepare(ctx, c, p)
	case *wire.Execute:
		return s.onExecute(ctx, c, p)
	case *wire.SendLongData:
		if st := s.stmts.get(c.StatementID); st != nil {
			st.wire.LongDataSent(c.Param)
		}
		return s.writeUpstream(p.Raw, false)
	case *wire.StmtClose:
		s.stmts.remove(c.StatementID)
		return s.writeUpstream(p.Raw, false)
	case *wire.StmtReset:
		if st := s.stmts.get(c.StatementID); st != nil {
			st.wire.LongData = nil
		}
		return s.forward(p.Raw, pending{kind: pkSimple, code: mysql.COM_STMT_RESET})
	case *wire.Fetch:
		st := s.stmts.get(c.StatementID)
		if st == nil {
			return s.localError(myError(codeUnknownStmt, "Unknown prepared statement handler (%d) given to Airlock", c.StatementID))
		}
		return s.forward(p.Raw, pending{kind: pkFetch, stmt: st})
	case *wire.InitDB:
		return s.onInitDB(ctx, string(c.Schema), p)
	case *wire.FieldList:
		return s.onFieldList(ctx, c, p)
	case *wire.ProcessKill:
		return s.onKill(ctx, fmt.Sprintf("KILL %d", c.ConnectionID), "process-kill", sqlmysql.Kill{ID: uint64(c.ConnectionID), OK: true})
	case *wire.ChangeUser:
		return s.localError(myError(wire.CodeNotSupported, "COM_CHANGE_USER is not supported through Airlock: connect again as the other identity"))
	case *wire.SetOption:
		return s.forward(p.Raw, pending{kind: pkSimple, code: mysql.COM_SET_OPTION})
	case *wire.Simple:
		return s.onSimple(c, p)
	case *wire.Replication:
		return s.localError(myError(wire.CodeNotSupported, "Replication and binlog commands are not relayed by Airlock"))
	}
	return s.localError(myError(codeUnknownCommand, "Unknown command"))
}

// resolveLast turns a command naming lastStatement into one naming the
// statement that id means, so the upstream runs what Airlock checked. It
// waits for the answers owed: a prepare sent just before may be the one.
func (s *relay) resolveLast(p wire.Packet) (wire.Packet, bool) {
	if s.cl.lastRefused {
		return p, false
	}
	s.pending.waitIdle(s.isEnded)
	st := s.stmts.get(lastStatement)
	if st == nil {
		return p, false
	}
	payload := bytes.Clone(p.Payload)
	binary.LittleEndian.PutUint32(payload[1:], st.id)
	raw, _ := wire.AppendPacket(nil, p.Seq, payload)
	return wire.Packet{Seq: p.Seq, Frames: p.Frames, Payload: payload, Raw: raw}, true
}

func (s *relay) onSimple(c *wire.Simple, p wire.Packet) error {
	switch c.Command {
	case mysql.COM_QUIT:
		if s.quitClean() {
			return errStop
		}
		s.quitting.Store(true)
		_ = s.writeUpstream(p.Raw, true)
		s.terminate(nil, "client quit")
		return errStop
	case mysql.COM_PING, mysql.COM_STATISTICS, mysql.COM_RESET_CONNECTION:
		return s.forward(p.Raw, pending{kind: pkSimple, code: c.Command})
	}
	return s.localError(myError(wire.CodeNotSupported, "COM_DEBUG is not relayed by Airlock"))
}

// command makes the session flow's command for text.
func command(text, kind string) *protocols.Command {
	return &protocols.Command{Protocol: protocols.MySQL, Text: text, Kind: kind}
}

// check runs the session flow's check. It returns the refusal the client
// gets when the command must not run (the session goes on), or an error
// that ends the session.
func (s *relay) check(ctx context.Context, cmd *protocols.Command) (protocols.Decision, *mysql.MyError, error) {
	return s.verdict(s.flow.Check(ctx, cmd))
}

// verdict maps what the session flow decided: a command withdrawn while
// held is refused as an interrupted query; a failed recording ends the
// session with an error; a client gone or a session ending ends it
// quietly.
func (s *relay) verdict(dec protocols.Decision, err error) (protocols.Decision, *mysql.MyError, error) {
	switch {
	case err == nil && dec.Action == protocols.Allow:
		return dec, nil, nil
	case err == nil:
		return dec, refusal(dec), nil
	case errors.Is(err, session.ErrCanceled):
		return dec, myError(codeInterrupted, "Query execution was interrupted: the command was withdrawn while it waited for approval; it did not run"), nil
	case errors.Is(err, session.ErrRecordingFailed):
		return dec, nil, recordingFailed()
	}
	if errors.Is(err, session.ErrClientGone) {
		s.terminate(nil, "client disconnected while its command was held")
	}
	s.shuttingDown(err)
	return dec, nil, errStop
}

func recordingFailed() *mysql.MyError {
	return myError(wire.CodeGateway, "Airlock could not record or decide the command; the session is closed so nothing runs unrecorded")
}

// onQuery checks a COM_QUERY, every statement of it, and forwards it.
func (s *relay) onQuery(ctx context.Context, q *wire.Query, p wire.Packet) error {
	text := string(q.Text)
	cmd := command(text, "query")
	d := sqlmysql.ReadDirectives(text)
	if refused := s.scope(d); refused != nil {
		if err := s.flow.Record(cmd, s.flow.RecordedText(cmd)); err != nil {
			return recordingFailed()
		}
		return s.localError(refused)
	}
	// The attribute block before the text, kept apart: a held command's
	// packet may be overwritten while the hold watches the client.
	attrs := bytes.Clone(p.Payload[1 : len(p.Payload)-len(q.Text)])
	dec, ref, err := s.check(ctx, cmd)
	if err != nil {
		return err
	}
	if ref != nil {
		return s.localError(ref)
	}
	if len(d.Kills) > 0 {
		if d.Statements != 1 || !d.Kills[0].OK {
			return s.localError(myError(wire.CodeNotSupported, "KILL through Airlock must be a statement of its own naming a connection id"))
		}
		return s.kill(d.Kills[0])
	}
	raw := p.Raw
	if dec.ApprovalID != "" {
		payload := append(append([]byte{mysql.COM_QUERY}, attrs...), text...)
		raw, _ = wire.AppendPacket(nil, 0, payload)
	}
	return s.forward(raw, pending{kind: pkQuery, files: d.LocalFiles})
}

// scope refuses a text that switches to a database the connection does
// not allow.
func (s *relay) scope(d sqlmysql.Directives) *mysql.MyError {
	u := upstreamOf(s.flow.Conn)
	if d.Unsure && len(d.Uses) > 0 && !u.AllowDatabaseChange.Any {
		return myError(codeDBAccess, "Airlock cannot tell which database this text switches to; write USE on its own")
	}
	for _, db := range d.Uses {
		if !u.AllowDatabaseChange.allows(db, u.Database) {
			return dbRefused(s.flow.Conn.Name, db)
		}
	}
	return nil
}

func dbRefused(conn, db string) *mysql.MyError {
	return myError(codeDBAccess, "Access denied to database '%s': connection '%s' does not allow switching to it (upstream.allow_database_change)", db, conn)
}

// onInitDB checks COM_INIT_DB (the client's USE) against the connection's
// database scope.
func (s *relay) onInitDB(ctx context.Context, db string, p wire.Packet) error {
	u := upstreamOf(s.flow.Conn)
	if !u.AllowDatabaseChange.allows(db, u.Database) {
		return s.localError(dbRefused(s.flow.Conn.Name, db))
	}
	_, ref, err := s.check(ctx, command("USE "+quoteIdent(db), "init-db"))
	if err != nil {
		return err
	}
	if ref != nil {
		return s.localError(ref)
	}
	return s.forward(p.Raw, pending{kind: pkSimple, code: mysql.COM_INIT_DB, schema: db})
}

// onFieldList checks COM_FIELD_LIST as the SHOW COLUMNS it stands for.
func (s *relay) onFieldList(ctx context.Context, f *wire.FieldList, p wire.Packet) error {
	// A held command's packet may be overwritten while the hold watches
	// the client.
	raw := bytes.Clone(p.Raw)
	_, ref, err := s.check(ctx, command("SHOW COLUMNS FROM "+quoteIdent(string(f.Table)), "field-list"))
	if err != nil {
		return err
	}
	if ref != nil {
		return s.localError(ref)
	}
	return s.forward(raw, pending{kind: pkFieldList})
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// fileData relays the client's file for an upstream's LOAD DATA LOCAL
// request, up to the empty packet that ends it.
func (s *relay) fileData(p wire.Packet) error {
	if len(p.Payload) == 0 {
		s.file.set(false)
		return s.writeUpstream(p.Raw, true)
	}
	return s.writeUpstream(p.Raw, false)
}
