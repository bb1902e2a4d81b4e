package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/redis/resp"
	"github.com/airlock-gw/airlock/protocols/transport"
	"github.com/airlock-gw/airlock/session"
)

// clientLoop reads client commands, decides and forwards them. It owns the
// client socket's read side and the upstream socket's write side.
func (s *relay) clientLoop(ctx context.Context) {
	for {
		args, raw, err := s.req.Next()
		if err != nil {
			if handled, ended := s.woken(err); handled {
				if ended {
					return
				}
				continue
			}
			var pe *resp.ProtocolError
			switch {
			case errors.As(err, &pe):
				// Redis answers malformed input with its error and closes.
				s.fail("ERR "+pe.Msg, "protocol violation")
			default:
				s.end("client disconnected")
			}
			return
		}
		if s.engine.draining.Load() && s.drained() {
			return // the command is not forwarded
		}
		err = s.command(ctx, args, raw, s.req.Inline())
		if err == nil && s.in.Buffered() == 0 {
			err = s.up.w.Flush()
		}
		if err != nil {
			switch {
			case errors.Is(err, errStop), s.isEnded():
				s.end("client disconnected")
			case errors.Is(err, errRecording):
				s.fail("ERR Airlock could not record the command; the session is closed so nothing runs unrecorded", "recording failed")
			case errors.Is(err, errSessionEnded):
				s.end("session ended")
			default:
				s.flow.UpstreamError()
				s.fail(fmt.Sprintf("ERR Airlock lost the upstream of connection %q", s.flow.Conn.Name), "upstream write failed")
			}
			return
		}
	}
}

// command handles one client command: check, then forward it or answer
// for it.
func (s *relay) command(ctx context.Context, args [][]byte, raw []byte, inline bool) error {
	name := s.names.upper(args[0])
	st := &s.state
	if st.monitor && name != "QUIT" {
		return s.answerError("ERR Airlock accepts only QUIT on a connection in MONITOR mode")
	}
	cmd := newCommand(args, &s.argBuf)
	strs := cmd.Args
	refusal, err := s.check(ctx, cmd)
	if err != nil {
		return err
	}
	if refusal == "" {
		refusal = s.unsupported(name, args)
	}
	if refusal != "" {
		// A refused command of a transaction fails it, as a command that
		// fails to queue does in Redis, so that it never runs in part.
		st.dirty = st.dirty || st.multi
		return s.answerError(refusal)
	}
	if inline {
		// The server would split the line as Airlock did; sending the
		// arguments it judged leaves no doubt.
		raw = resp.AppendArgs(nil, args)
	}
	switch name {
	case "AUTH":
		user := ""
		if len(args) == 3 {
			user = strs[1]
		}
		if len(args) < 2 || len(args) > 3 {
			return s.answerError(wrongArgs(name))
		}
		return s.answer(s.reauth(ctx, user, strs[len(strs)-1]))
	case "HELLO":
		return s.hello(ctx, args)
	case "RESET":
		return s.reset(raw)
	case "MULTI":
		if !st.multi {
			st.multi, st.dirty, st.queued = true, false, st.queued[:0]
		}
	case "EXEC":
		return s.exec(raw)
	case "DISCARD":
		st.multi, st.dirty = false, false
	case "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE":
		return s.subscribe(name, args, raw)
	case "QUIT":
		s.quit.Store(true)
	case "MONITOR":
		st.monitor = true
		return s.forward(raw, pending{kind: pkReply, after: afterMonitor})
	}
	p := pending{kind: pkReply}
	if s.reader.rules {
		sh := shapeOf(name, args, st.proto)
		if st.multi && name != "MULTI" {
			st.queued = append(st.queued, sh)
		} else {
			p.shape = sh
		}
	}
	return s.forward(raw, p)
}

// forward queues the reply the command owes, then sends it upstream.
func (s *relay) forward(raw []byte, p pending) error {
	p.start = time.Now()
	s.pending.push(p)
	_, err := s.up.w.Write(raw)
	return err
}

// send sends a command of Airlock's own, whose reply is read and dropped.
func (s *relay) send(p pending, args ...string) error {
	p.kind = pkInternal
	return s.forward(resp.AppendCommand(nil, args...), p)
}

// unsupported returns the error for an allowed command the engine cannot
// relay as it stands, or "".
func (s *relay) unsupported(name string, args [][]byte) string {
	st := &s.state
	switch name {
	case "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE":
		if len(args) < 2 {
			return wrongArgs(name)
		}
		fallthrough
	case "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE", "MONITOR", "HELLO", "AUTH":
		if st.multi {
			return "ERR Airlock does not relay " + name + " inside MULTI"
		}
	case "SYNC", "PSYNC", "REPLCONF":
		return "ERR Airlock does not relay replication streams"
	case "CLIENT":
		if len(args) >= 3 && strings.EqualFold(string(args[1]), "REPLY") && !strings.EqualFold(string(args[2]), "ON") {
			return "ERR Airlock does not support CLIENT REPLY OFF or SKIP: every command gets its reply"
		}
	}
	return databaseGuard(s.flow.Conn, name, args)
}

// databaseGuard keeps the session in its connection's database unless the
// connection allows others: SELECT, MOVE, COPY … DB and SWAPDB name one.
func databaseGuard(c *protocols.Connection, name string, args [][]byte) string {
	u := upstreamOf(c)
	if u.AllowSelect {
		return ""
	}
	var other []byte
	switch name {
	case "SELECT":
		if len(args) == 2 {
			other = args[1]
		}
	case "MOVE":
		if len(args) == 3 {
			other = args[2]
		}
	case "COPY":
		for i := 3; i+1 < len(args); i++ {
			if strings.EqualFold(string(args[i]), "DB") {
				other = args[i+1]
			}
		}
	case "SWAPDB":
		if len(args) == 3 {
			if n, err := strconv.Atoi(string(args[1])); err != nil || n != u.Database {
				other = args[1]
			} else {
				other = args[2]
			}
		}
	}
	if other == nil {
		return ""
	}
	if n, err := strconv.Atoi(string(other)); err == nil && n == u.Database {
		return ""
	}
	return fmt.Sprintf("NOPERM connection %q is fixed to database %d", c.Name, u.Database)
}

// reauth answers an AUTH (or HELLO … AUTH) in a session: the caller may
// prove its identity again, but not change it or the connection.
func (s *relay) reauth(ctx context.Context, user, secret string) []byte {
	identity, connection := s.engine.route(user)
	caller := session.Caller{Protocol: protocols.Redis, User: identity, Secret: protocols.Secret(secret),
		Connection: connection, Peer: s.flow.Info.ClientAddr, TLS: s.tls, Local: transport.IsLocal(s.conn.RemoteAddr()), Renewal: true}
	flow, err := s.engine.gateway.Admit(ctx, caller)
	switch {
	case err != nil:
		return resp.AppendError(nil, admitError(err, connection))
	case flow.Info.Identity.Name != s.flow.Info.Identity.Name || flow.Conn.Name != s.flow.Conn.Name:
		return resp.AppendError(nil, "ERR Airlock sessions cannot change identity or connection: open a new connection")
	}
	return resp.AppendSimple(nil, "OK")
}

// hello answers HELLO in a session: Airlock answers for the upstream and
// switches the upstream to the protocol version the client asked for.
func (s *relay) hello(ctx context.Context, args [][]byte) error {
	h, msg := parseHelloArgs(args)
	if msg != "" {
		return s.answerError(msg)
	}
	if h.auth {
		if r := s.reauth(ctx, h.user, h.pass); r[0] == '-' {
			return s.answer(r)
		}
	}
	if h.proto != 0 && h.proto != s.state.proto {
		s.state.proto = h.proto
		if err := s.send(pending{switchTo: h.proto}, "HELLO", strconv.Itoa(int(h.proto))); err != nil {
			return err
		}
	}
	if h.setName {
		if err := s.send(pending{}, "CLIENT", "SETNAME", h.name); err != nil {
			return err
		}
	}
	return s.answer(appendHello(nil, s.up.hello, s.state.proto))
}

// reset forwards RESET, which also logs the upstream out and takes it to
// database 0, then logs in again and selects the connection's database.
func (s *relay) reset(raw []byte) error {
	s.state = clientState{proto: resp.RESP2, queued: s.state.queued[:0]}
	if err := s.forward(raw, pending{kind: pkReply, after: afterReset, switchTo: resp.RESP2}); err != nil {
		return err
	}
	u := upstreamOf(s.flow.Conn)
	if pw := u.Password.Reveal(); pw != "" {
		user := u.User
		if user == "" {
			user = "default"
		}
		if err := s.send(pending{}, "AUTH", user, pw); err != nil {
			return err
		}
	}
	if u.Database != 0 {
		return s.send(pending{}, "SELECT", strconv.Itoa(u.Database))
	}
	return nil
}

// exec ends a transaction. One with a refused command is discarded
// upstream and fails as Redis fails a transaction with a queueing error.
func (s *relay) exec(raw []byte) error {
	st := &s.state
	if !st.multi {
		return s.forward(raw, pending{kind: pkReply})
	}
	p := pending{kind: pkReply}
	if st.dirty {
		raw = resp.AppendCommand(nil, "DISCARD")
		p.replace = resp.AppendError(nil, msgExecAbort)
	} else if s.reader.rules {
		p.shape = shape{exec: append([]shape(nil), st.queued...)}
	}
	st.multi, st.dirty, st.queued = false, false, st.queued[:0]
	return s.forward(raw, p)
}

// subscribe forwards a (un)subscribe command, whose answers are pub/sub
// confirmations: one per channel named, or at least one for an
// unsubscribe from all.
func (s *relay) subscribe(name string, args [][]byte, raw []byte) error {
	return s.forward(raw, pending{kind: pkPubSub, confirms: strings.ToLower(name), expect: max(len(args)-1, 1)})
}

// smallCommand is the most argument bytes a command may have for its
// arguments to be views of one string, and inlineArgs the most arguments
// held in the command's own allocation: a string shared by a command's
// arguments lives as long as the longest-lived of them.
const (
	smallCommand = 256
	inlineArgs   = 4
)

// commandBox holds a command and its first arguments in one allocation.
type commandBox struct {
	cmd  protocols.Command
	args [inlineArgs]string
}

// newCommand is the session flow's command for args, in two allocations
// when it is small: the command with its argument vector, and one string
// its arguments are views of. buf is scratch space kept by the caller.
func newCommand(args [][]byte, buf *[]byte) *protocols.Command {
	box := &commandBox{cmd: protocols.Command{Protocol: protocols.Redis, Kind: "command"}}
	strs := box.args[:0:inlineArgs]
	if len(args) > inlineArgs {
		strs = make([]string, 0, len(args))
	}
	n := 0
	for _, a := range args {
		n += len(a)
	}
	if n > smallCommand {
		for _, a := range args {
			strs = append(strs, string(a))
		}
		box.cmd.Args = strs
		return &box.cmd
	}
	b := (*buf)[:0]
	for _, a := range args {
		b = append(b, a...)
	}
	*buf = b
	all, off := string(b), 0
	for _, a := range args {
		strs = append(strs, all[off:off+len(a)])
		off += len(a)
	}
	box.cmd.Args = strs
	return &box.cmd
}

// maxNames bounds the command names a session keeps (nameCache).
const maxNames = 64

// nameCache keeps the upper-case names of the commands a session sent, so
// that a name costs no allocation after its first use.
type nameCache struct {
	m map[string]string
}

// upper is upperName with the names kept; "" for a name longer than any
// Airlock treats apart.
func (c *nameCache) upper(name []byte) string {
	var buf [24]byte
	if len(name) > len(buf) {
		return ""
	}
	up := buf[:0]
	for _, ch := range name {
		if 'a' <= ch && ch <= 'z' {
			ch -= 'a' - 'A'
		}
		up = append(up, ch)
	}
	if n, ok := c.m[string(up)]; ok {
		return n
	}
	if c.m == nil || len(c.m) >= maxNames {
		c.m = make(map[string]string, 16)
	}
	n := string(up)
	c.m[n] = n
	return n
}

// upperName appends the command name in upper case to dst, up to its
// capacity (longer names are no command Airlock treats apart).
func upperName(dst, name []byte) string {
	if len(name) > cap(dst) {
		return ""
	}
	for _, c := range name {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return string(dst)
}
