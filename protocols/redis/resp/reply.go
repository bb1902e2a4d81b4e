package resp

import (
	"bytes"
	"strconv"
)

// Defaults of ReplyOptions.
const (
	// DefaultChunkSize is the longest bulk payload delivered whole.
	DefaultChunkSize = 64 << 10
	// DefaultMaxDepth bounds the nesting of aggregates; Redis itself never
	// nests deeper than a Lua script's table, which it bounds too.
	DefaultMaxDepth = 1000
	// DefaultMaxLine bounds a line-based value (simple string, error,
	// integer, double, big number) and every header line, since those
	// arrive whole.
	DefaultMaxLine = 1 << 20
)

// ReplyOptions tunes a ReplyDecoder; zero fields take the defaults.
type ReplyOptions struct {
	// ChunkSize is the longest bulk string, bulk error or verbatim string
	// payload delivered whole in one token; longer ones are streamed in
	// chunks of at most this size, so the decoder's memory stays bounded
	// whatever the reply. Values the masker must see whole have to fit.
	ChunkSize int
	// MaxDepth is the deepest nesting of aggregates accepted.
	MaxDepth int
	// MaxLine is the longest line accepted, CRLF included.
	MaxLine int
}

// frame is an aggregate still waiting for elements.
type frame struct {
	remaining int64 // elements still to come; a map counts keys and values
	attribute bool  // the frame is an attribute, which its parent does not count
	inAttr    bool  // the frame is an attribute or inside one
	inPush    bool  // the frame is a top-level push or inside one
}

// ReplyDecoder is a pull decoder of server replies in RESP2 and RESP3. It
// holds no value whole except scalars up to ReplyOptions.ChunkSize and lines
// up to MaxLine, so its memory is bounded whatever the server sends: an
// aggregate of a million elements is a header token and a million element
// tokens, a 100 MB bulk string a header, chunks and an end.
type ReplyDecoder struct {
	r      Reader
	opts   ReplyOptions
	stack  []frame
	stream Token // the template of a streamed bulk's tokens, while one is open
	left   int64 // payload bytes of the streamed bulk still to come
	// annotated is set from the end of a top-level attribute to the start
	// of the value it annotates.
	annotated bool
	buf       []byte
	err       error
}

// NewReplyDecoder returns a decoder of the replies read from r.
func NewReplyDecoder(r Reader, opts ReplyOptions) *ReplyDecoder {
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = DefaultChunkSize
	}
	if opts.MaxDepth <= 0 {
		opts.MaxDepth = DefaultMaxDepth
	}
	if opts.MaxLine <= 0 {
		opts.MaxLine = DefaultMaxLine
	}
	return &ReplyDecoder{r: r, opts: opts, stack: make([]frame, 0, 8)}
}

// Reset makes d read from r as a new connection, keeping its options.
func (d *ReplyDecoder) Reset(r Reader) {
	d.r, d.err, d.stack, d.stream, d.left, d.annotated = r, nil, d.stack[:0], Token{}, 0, false
	if cap(d.buf) > keepBuffer {
		d.buf = nil
	}
}

// Depth is the number of values begun and not finished: open aggregates
// and attributes, a streamed bulk, and the value a finished top-level
// attribute annotates. It is zero exactly between top-level replies and
// push messages.
func (d *ReplyDecoder) Depth() int {
	n := len(d.stack)
	if d.stream.Part == PartBegin || d.annotated {
		n++
	}
	return n
}

// Next returns the next token, valid until the next call.
//
// A *ProtocolError means the input cannot be framed. io.EOF means the input
// ended between top-level values, io.ErrUnexpectedEOF inside one. An error
// at Depth zero before any byte was consumed (a read deadline while idle)
// may be retried; any other is returned again by every later call.
func (d *ReplyDecoder) Next() (Token, error) {
	if d.err != nil {
		return Token{}, d.err
	}
	var t Token
	var err error
	if d.stream.Part == PartBegin {
		err = d.streamed(&t)
	} else if b, perr := peekSome(d.r); len(b) == 0 {
		if d.Depth() == 0 {
			return Token{}, perr // nothing consumed: the caller may retry
		}
		err = unexpected(perr)
	} else {
		err = d.value(&t, b)
	}
	if err != nil {
		d.err = err
		return Token{}, err
	}
	return t, nil
}

// value decodes into t the token that starts at the next byte; peeked is
// what the reader has buffered, at least one byte. Tokens are filled in
// place because copying them dominates the cost of decoding small values.
func (d *ReplyDecoder) value(t *Token, peeked []byte) error {
	if !knownKind[peeked[0]] {
		return protoErr("Protocol error: unknown reply type " + strconv.QuoteRune(rune(peeked[0])))
	}
	line, copied, err := d.line(peeked)
	if err != nil {
		return err
	}
	t.Kind, t.Depth = Kind(line[0]), len(d.stack)
	if n := len(d.stack); n > 0 {
		t.Attr, t.Push = d.stack[n-1].inAttr, d.stack[n-1].inPush
	} else if t.Kind != Attribute {
		d.annotated = false
	}
	body, ok := trimCRLF(line)
	if !ok {
		return protoErr("Protocol error: " + t.Kind.String() + " line does not end in CRLF")
	}
	body = body[1:]
	switch t.Kind {
	case BulkString, BulkError, Verbatim:
		return d.bulk(t, line, body, copied)
	case Array, Map, Set, Attribute, Push:
		return d.aggregate(t, line, body, copied)
	}
	if !validScalar(t.Kind, body) {
		return protoErr("Protocol error: invalid " + t.Kind.String())
	}
	t.Payload, t.Raw = body, line
	d.consume(line, copied)
	d.finish(t, false)
	return nil
}

// bulk decodes a bulk string, bulk error or verbatim string whose header is
// line; body is the header without type byte and CRLF.
func (d *ReplyDecoder) bulk(t *Token, line, body []byte, copied bool) error {
	n, ok := parseLength(body, t.Kind == BulkString)
	if !ok || (t.Kind == Verbatim && n < 4) {
		return protoErr("Protocol error: invalid " + t.Kind.String() + " length")
	}
	t.Len = n
	if n < 0 {
		t.Raw = line
		d.consume(line, copied)
		d.finish(t, false)
		return nil
	}
	if n > int64(d.opts.ChunkSize) {
		return d.begin(t, line, copied)
	}
	raw, err := d.extend(line, copied, n+2)
	if err != nil {
		return err
	}
	end := len(raw) - 2
	if raw[end] != '\r' || raw[end+1] != '\n' {
		return protoErr("Protocol error: expected CRLF after " + t.Kind.String())
	}
	t.Raw, t.Payload = raw, raw[len(line):end]
	if t.Kind == Verbatim {
		if t.Payload[3] != ':' {
			return errVerbatimFormat
		}
		t.Format, t.Payload = t.Payload[:3], t.Payload[4:]
	}
	d.finish(t, false)
	return nil
}

var errVerbatimFormat = protoErr("Protocol error: verbatim string without a format prefix")

// begin starts streaming a long bulk: the token is its header, with a
// verbatim string's format prefix, and the payload follows in chunks.
func (d *ReplyDecoder) begin(t *Token, line []byte, copied bool) error {
	t.Part, t.Raw = PartBegin, line
	d.left = t.Len
	if t.Kind == Verbatim {
		raw, err := d.extend(line, copied, 4)
		if err != nil {
			return err
		}
		if raw[len(raw)-1] != ':' {
			return errVerbatimFormat
		}
		t.Raw, t.Format = raw, raw[len(line):len(line)+3]
		d.left -= 4
	} else {
		d.consume(line, copied)
	}
	d.stream = *t
	d.stream.Raw, d.stream.Format = nil, nil
	return nil
}

// streamed returns the next chunk of a streamed bulk, or its end.
func (d *ReplyDecoder) streamed(t *Token) error {
	*t = d.stream
	if d.left > 0 {
		b, err := peekSome(d.r)
		if len(b) == 0 {
			return unexpected(err)
		}
		n := int(min(int64(len(b)), int64(d.opts.ChunkSize), d.left))
		_, _ = d.r.Discard(n)
		d.left -= int64(n)
		t.Part, t.Payload, t.Raw = PartChunk, b[:n], b[:n]
		return nil
	}
	b, err := d.r.Peek(2)
	if err != nil {
		return unexpected(err)
	}
	if b[0] != '\r' || b[1] != '\n' {
		return protoErr("Protocol error: expected CRLF after " + t.Kind.String())
	}
	_, _ = d.r.Discard(2)
	t.Part, t.Raw = PartEnd, b
	d.stream = Token{}
	d.finish(t, false)
	return nil
}

// aggregate decodes an aggregate's header and opens a frame for its
// elements.
func (d *ReplyDecoder) aggregate(t *Token, line, body []byte, copied bool) error {
	n, ok := parseLength(body, t.Kind == Array)
	if !ok {
		return protoErr("Protocol error: invalid " + t.Kind.String() + " length")
	}
	t.Len, t.Raw = n, line
	t.Attr = t.Attr || t.Kind == Attribute
	t.Push = t.Push || (t.Kind == Push && t.Depth == 0)
	elements := n
	if t.Kind == Map || t.Kind == Attribute {
		elements *= 2
	}
	if elements > 0 && len(d.stack) >= d.opts.MaxDepth {
		return protoErr("Protocol error: reply nested deeper than " + strconv.Itoa(d.opts.MaxDepth))
	}
	d.consume(line, copied)
	if elements <= 0 {
		d.finish(t, t.Kind == Attribute)
		return nil
	}
	d.stack = append(d.stack, frame{
		remaining: elements,
		attribute: t.Kind == Attribute,
		inAttr:    t.Attr,
		inPush:    t.Push,
	})
	return nil
}

// finish records that a value ended with token t, closing the aggregates it
// completes. An attribute is not an element of the aggregate it is in: it
// annotates the element that follows. When a top-level value other than an
// attribute ends, t is marked Complete.
func (d *ReplyDecoder) finish(t *Token, attribute bool) {
	for len(d.stack) > 0 {
		if attribute {
			return
		}
		top := &d.stack[len(d.stack)-1]
		if top.remaining--; top.remaining > 0 {
			return
		}
		attribute = top.attribute
		d.stack = d.stack[:len(d.stack)-1]
	}
	t.Complete = !attribute
	d.annotated = attribute
}

// consume drops a line that was only peeked.
func (d *ReplyDecoder) consume(line []byte, copied bool) {
	if !copied {
		_, _ = d.r.Discard(len(line))
	}
}

// line returns the next line, CRLF included, still in the reader's buffer
// when it fits there (copied false, to be consumed), or else moved into
// d.buf (copied true, already consumed). b is what is already peeked.
func (d *ReplyDecoder) line(b []byte) (line []byte, copied bool, err error) {
	scanned := 0
	for {
		if i := bytes.IndexByte(b[scanned:], '\n'); i >= 0 {
			if scanned+i+1 > d.opts.MaxLine {
				return nil, false, d.errLongLine()
			}
			return b[:scanned+i+1], false, nil
		}
		scanned = len(b)
		switch {
		case err != nil:
			return nil, false, unexpected(err)
		case scanned > d.opts.MaxLine:
			return nil, false, d.errLongLine()
		case scanned >= d.r.Size():
			return d.copyLine()
		}
		b, err = d.r.Peek(max(scanned+1, d.r.Buffered()))
	}
}

// copyLine moves a line longer than the reader's buffer into d.buf.
func (d *ReplyDecoder) copyLine() ([]byte, bool, error) {
	d.buf = d.buf[:0]
	for {
		b, err := peekSome(d.r)
		if len(b) == 0 {
			return nil, false, unexpected(err)
		}
		n := len(b)
		i := bytes.IndexByte(b, '\n')
		if i >= 0 {
			n = i + 1
		}
		if len(d.buf)+n > d.opts.MaxLine {
			return nil, false, d.errLongLine()
		}
		d.buf = append(d.buf, b[:n]...)
		_, _ = d.r.Discard(n)
		if i >= 0 {
			return d.buf, true, nil
		}
	}
}

func (d *ReplyDecoder) errLongLine() error {
	return protoErr("Protocol error: reply line longer than " + strconv.Itoa(d.opts.MaxLine) + " bytes")
}

// extend returns line followed by the next n bytes, all consumed: from the
// reader's buffer when they fit there, else copied into d.buf.
func (d *ReplyDecoder) extend(line []byte, copied bool, n int64) ([]byte, error) {
	total := int64(len(line)) + n
	if !copied && total <= int64(d.r.Size()) {
		raw, err := d.r.Peek(int(total))
		if err != nil {
			return nil, unexpected(err)
		}
		_, _ = d.r.Discard(int(total))
		return raw, nil
	}
	if !copied {
		d.buf = append(d.buf[:0], line...)
		_, _ = d.r.Discard(len(line))
	}
	var err error
	d.buf, err = readFull(d.r, d.buf, n)
	return d.buf, err
}
