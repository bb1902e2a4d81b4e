package redis

import (
	"errors"
	"fmt"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/redis/resp"
)

// readerState is the upstream reader's: what it knows of the upstream
// session's mode, and its walker.
type readerState struct {
	s *relay
	// rules is set when the caller's masker has rules by column name (the
	// client reader reads it too; it does not change).
	rules bool
	proto resp.Proto
	// monitor is set once the upstream streams MONITOR output.
	monitor bool
	// partial is set while a reply is half written to the client.
	partial bool
	// subs and shardSubs are the upstream's pub/sub subscriptions, from
	// its last confirmations: in RESP2 the session is in pub/sub mode
	// while either is positive.
	subs, shardSubs int64

	w      walker
	attr   []byte // a reply's leading attributes, until the reply is known
	header []byte // an aggregate's header, while its first element is read
	locals [][]byte
	emitTo func([]byte) // writes to the client; set per session
	drop   func([]byte)
	toAttr func([]byte)
}

func (r *readerState) init(s *relay) {
	r.s = s
	r.proto = s.state.proto
	m := s.flow.Masker()
	r.w.masker = m
	if cr, ok := m.(protocols.ColumnRuler); ok && cr.HasColumnRules() {
		r.rules = true
	}
	r.w.rules = r.rules
	r.w.record = s.flow.Records()
	r.emitTo = func(b []byte) { _, _ = s.out.Write(b) }
	r.drop = func([]byte) {}
	r.toAttr = func(b []byte) { r.attr = append(r.attr, b...) }
}

// subscribed reports whether RESP2 pub/sub framing applies.
func (r *readerState) subscribed() bool { return r.subs > 0 || r.shardSubs > 0 }

// upstreamLoop reads replies until the upstream ends.
func (s *relay) upstreamLoop() {
	r := &s.reader
	for {
		t, err := s.up.dec.Next()
		if s.engine.set.QueryTimeout > 0 {
			s.progress.Add(1)
		}
		if err == nil {
			err = r.reply(t)
		}
		if err != nil {
			s.upstreamEnded(err)
			return
		}
	}
}

// upstreamEnded ends the session when the upstream reader stops.
func (s *relay) upstreamEnded(err error) {
	switch {
	case s.isEnded(), errors.Is(err, errSessionEnded):
	case s.reader.partial:
		// A message now would land inside the reply half written.
		s.flow.UpstreamError()
		s.log.Warn("upstream failed inside a reply", "err", err)
		s.end("upstream failed inside a reply")
	case s.quit.Load() && isClosed(err):
		s.end("client quit")
	case errors.Is(err, errRecording):
		s.fail("ERR Airlock could not record a reply; the session is closed so nothing passes unrecorded", "recording failed")
	case errors.Is(err, errInternal):
		s.fail("ERR Airlock lost its session with the upstream", err.Error())
	default:
		var pe *resp.ProtocolError
		if errors.As(err, &pe) {
			s.log.Warn("upstream sent what Airlock cannot read", "err", err)
		}
		s.flow.UpstreamError()
		s.fail(fmt.Sprintf("ERR Airlock lost the upstream of connection %q", s.flow.Conn.Name), "upstream closed")
	}
}

var errInternal = errors.New("upstream refused a command of Airlock's own")

// pub/sub message and confirmation kinds.
func pubsubKind(b []byte) (kind string, confirmation bool) {
	switch string(b) {
	case "message", "pmessage", "smessage":
		return string(b), false
	case "subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe":
		return string(b), true
	}
	return "", false
}

// reply reads one top-level value that starts with t and relays it: a
// reply to the command at the head of the queue, or a message out of band
// (a push, a pub/sub message, MONITOR output).
func (r *readerState) reply(t resp.Token) error {
	s := r.s
	dec := s.up.dec
	r.attr = r.attr[:0]
	r.w.begin(noShape, r.proto, r.toAttr)
	for t.Attr {
		r.w.token(t)
		var err error
		if t, err = dec.Next(); err != nil {
			return err
		}
	}
	head, queued := s.pending.peek()
	// An aggregate that may be a pub/sub message is told by its first
	// element, which is read ahead.
	var first resp.Token
	kind, confirmation := "", false
	lookahead := t.Len > 0 && (t.Kind == resp.Push ||
		(t.Kind == resp.Array && t.Len <= 4 && (r.subscribed() || (queued && head.kind == pkPubSub))))
	if lookahead {
		r.header = append(r.header[:0], t.Raw...)
		t.Raw = r.header
		var err error
		if first, err = dec.Next(); err != nil {
			return err
		}
		if first.Part == resp.PartWhole && (first.Kind == resp.BulkString || first.Kind == resp.SimpleString) {
			kind, confirmation = pubsubKind(first.Payload)
		}
	}
	outOfBand := r.monitor || t.Kind == resp.Push || (t.Kind == resp.Array && kind != "" &&
		(r.subscribed() || (confirmation && queued && head.kind == pkPubSub)))
	isError := t.Kind == resp.SimpleError || t.Kind == resp.BulkError
	switch {
	case outOfBand:
		queued = false
	case !queued || head.kind == pkLocal || (head.kind == pkPubSub && !isError):
		// Nothing owed, or a pub/sub command waits for a confirmation: a
		// reply no command asked for is relayed as it is.
		s.log.Debug("unexpected reply from the upstream relayed out of band")
		queued, outOfBand = false, true
	}
	if queued && head.kind == pkInternal {
		return r.internal(t, lookahead, first, head)
	}
	sh := noShape
	if queued {
		sh = head.shape
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if s.out == nil {
		return errSessionEnded
	}
	emit := r.emitTo
	if queued && head.replace != nil {
		emit = r.drop
	}
	r.w.begin(sh, r.proto, emit)
	if len(r.attr) > 0 {
		r.w.emit(r.attr)
	}
	r.partial = true
	if err := r.walk(t, lookahead, first); err != nil {
		return err
	}
	r.partial = false
	if queued && head.replace != nil {
		r.w.replaced(head.replace, r.emitTo)
	}
	return r.finish(head, queued, kind, confirmation)
}

// walk takes the reply's tokens through the walker until it is complete.
func (r *readerState) walk(t resp.Token, lookahead bool, first resp.Token) error {
	r.w.token(t)
	done := t.Complete
	if lookahead {
		r.w.token(first)
		done = first.Complete
	}
	for !done {
		next, err := r.s.up.dec.Next()
		if err != nil {
			return err
		}
		r.w.token(next)
		done = next.Complete
	}
	return nil
}

// finish ends a relayed reply (the caller holds the writer's lock): it
// records it, resolves its queue entry and writes the replies Airlock made
// that were waiting for it.
func (r *readerState) finish(head pending, queued bool, kind string, confirmation bool) error {
	s := r.s
	if err := s.results.Reply(r.w.reply()); err != nil {
		return r.unrecorded()
	}
	if queued {
		s.pending.pop()
		res := protocols.Result{Rows: r.w.count, Error: r.w.errText}
		if res.Error != "" {
			res.Code = errorCode([]byte(res.Error))
		}
		if err := s.results.End(res, head.start); err != nil {
			return r.unrecorded()
		}
		s.results.Done(head.start)
		r.after(head)
	}
	if confirmation {
		if kind == "ssubscribe" || kind == "sunsubscribe" {
			r.shardSubs = r.w.lastInt
		} else {
			r.subs = r.w.lastInt
		}
		s.pending.confirm(kind)
	}
	r.locals = s.pending.takeLocals(r.locals[:0])
	for i, b := range r.locals {
		r.emitTo(b)
		r.locals[i] = nil
	}
	if s.up.r.Buffered() == 0 {
		return s.out.Flush()
	}
	return nil
}

// unrecorded drops a reply the recording refused, when none of it has left
// yet: nothing reaches the client unrecorded. A reply larger than the
// output buffer is streamed before it is recorded, and the session then
// ends without a word, since one would land inside it.
func (r *readerState) unrecorded() error {
	if r.w.emitted <= int64(r.s.out.Buffered()) {
		r.s.out.Reset(r.s.conn)
	} else {
		r.partial = true
	}
	return errRecording
}

// after applies what a reply changes.
func (r *readerState) after(p pending) {
	switch p.after {
	case afterMonitor:
		r.monitor = r.w.errText == ""
	case afterReset:
		r.monitor, r.subs, r.shardSubs = false, 0, 0
	}
	if p.switchTo != 0 {
		r.proto = p.switchTo
	}
}

// internal reads the reply to a command Airlock sent on its own; an error
// ends the session, which the upstream would otherwise run in a state
// Airlock did not set up.
func (r *readerState) internal(t resp.Token, lookahead bool, first resp.Token, head pending) error {
	r.w.begin(noShape, r.proto, r.drop)
	if err := r.walk(t, lookahead, first); err != nil {
		return err
	}
	if r.w.errText != "" || t.Kind == resp.SimpleError || t.Kind == resp.BulkError {
		r.s.log.Error("upstream refused a command of Airlock's own", "err", r.w.errText)
		return errInternal
	}
	r.s.outMu.Lock()
	defer r.s.outMu.Unlock()
	if r.s.out == nil {
		return errSessionEnded
	}
	// Popped under the writer's lock, so that the client reader cannot
	// write a reply of its own before the ones queued behind this one.
	r.s.pending.pop()
	r.after(head)
	r.locals = r.s.pending.takeLocals(r.locals[:0])
	for i, b := range r.locals {
		r.emitTo(b)
		r.locals[i] = nil
	}
	if r.s.up.r.Buffered() == 0 {
		return r.s.out.Flush()
	}
	return nil
}

// replaced writes the reply that stands for the upstream's.
func (w *walker) replaced(b []byte, emit func([]byte)) {
	w.kind, w.count = "error", 0
	w.forget()
	w.errText = string(b[1 : len(b)-2])
	w.keep([]byte(w.errText))
	w.out = emit
	w.emit(b)
}
