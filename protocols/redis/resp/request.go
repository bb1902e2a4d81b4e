package resp

import (
	"bytes"
	"slices"
)

// Limits Redis applies to client commands, with the names of its settings.
const (
	// DefaultMaxBulk is Redis's default proto-max-bulk-len.
	DefaultMaxBulk = 512 << 20
	// DefaultMaxCommand is Redis's default client-query-buffer-limit.
	DefaultMaxCommand = 1 << 30
	// MaxArgs is the largest multibulk count accepted. Redis 7 accepts up to
	// 2^31-1; the gateway keeps the 1024*1024 of older releases, since no
	// client needs more and each argument costs memory before it is judged.
	MaxArgs = 1024 * 1024
	// MaxInline is PROTO_INLINE_MAX_SIZE, the longest inline command line and
	// the longest header line of a multibulk command.
	MaxInline = 64 << 10

	// Before authentication Redis allows only small commands, so that a
	// client without a password cannot make it allocate.
	preAuthMaxArgs = 10
	preAuthMaxBulk = 16384

	// Buffers above this size are dropped after use rather than kept for
	// the next command, so one large SET does not pin its size for the
	// connection's lifetime.
	keepBuffer = 1 << 20
	keepArgs   = 4096
)

// The texts Redis replies with before closing the connection.
var (
	errMultibulkLength  = protoErr("Protocol error: invalid multibulk length")
	errBulkLength       = protoErr("Protocol error: invalid bulk length")
	errTooBigInline     = protoErr("Protocol error: too big inline request")
	errTooBigMbulkCount = protoErr("Protocol error: too big mbulk count string")
	errTooBigBulkCount  = protoErr("Protocol error: too big bulk count string")
	errUnbalanced       = protoErr("Protocol error: unbalanced quotes in request")
	errPreAuthMultibulk = protoErr("Protocol error: unauthenticated multibulk length")
	errPreAuthBulk      = protoErr("Protocol error: unauthenticated bulk length")
	// Redis has no text for the following: it skips two bytes after a bulk
	// whatever they are, waits forever for a newline after a NUL in an
	// inline line (it searches with strchr) and closes silently past its
	// query buffer limit. The gateway refuses all three, so that it never
	// relays bytes the server would frame differently.
	errBulkCRLF      = protoErr("Protocol error: expected CRLF after bulk argument")
	errInlineNUL     = protoErr("Protocol error: NUL byte in inline request")
	errCommandTooBig = protoErr("Protocol error: command exceeds the query buffer limit")
)

// RequestLimits bounds the commands a RequestDecoder accepts.
type RequestLimits struct {
	// MaxBulk is the longest argument, Redis's proto-max-bulk-len; zero
	// means DefaultMaxBulk.
	MaxBulk int64
	// MaxCommand is the most bytes one command may take, like Redis's
	// client-query-buffer-limit; zero means DefaultMaxCommand. A command's
	// arguments are held in memory whole until the next call, as Redis
	// holds them, so this is the memory one client can make the gateway
	// hold; the gateway sets it, and MaxBulk, well below Redis's defaults.
	MaxCommand int64
}

// RequestDecoder reads client commands one at a time: RESP arrays of bulk
// strings, and inline commands (a line of text, as typed into telnet).
type RequestDecoder struct {
	r       Reader
	limits  RequestLimits
	preAuth bool
	buf     []byte // the raw command, then an inline command's arguments
	rawLen  int
	spans   []span
	args    [][]byte
	inline  bool
	err     error
}

// NewRequestDecoder returns a decoder of the commands read from r.
func NewRequestDecoder(r Reader, limits RequestLimits) *RequestDecoder {
	if limits.MaxBulk <= 0 {
		limits.MaxBulk = DefaultMaxBulk
	}
	if limits.MaxCommand <= 0 {
		limits.MaxCommand = DefaultMaxCommand
	}
	return &RequestDecoder{r: r, limits: limits}
}

// Reset makes d read from r as a new connection, keeping its buffers and
// limits; the next connection starts authenticated, as a new decoder does.
func (d *RequestDecoder) Reset(r Reader) {
	d.r, d.err, d.preAuth, d.inline = r, nil, false, false
	d.release()
}

// SetAuthenticated applies (false) or lifts (true) Redis's limits for a
// client that has not authenticated yet: at most 10 arguments of at most
// 16384 bytes each. A new decoder starts authenticated, like a client of a
// Redis without a password.
func (d *RequestDecoder) SetAuthenticated(ok bool) { d.preAuth = !ok }

// Inline reports whether the last command was an inline command.
func (d *RequestDecoder) Inline() bool { return d.inline }

// Next returns the next command's arguments and its raw bytes as received,
// both valid until the next call. Empty inline lines and empty or negative
// multibulk counts are skipped, as Redis skips them, and are in no raw.
//
// A *ProtocolError means the input cannot be framed; Redis replies
// "-ERR "+Msg and closes. io.EOF means the input ended between commands,
// io.ErrUnexpectedEOF inside one. An error before any byte of a command was
// consumed (a read deadline while idle) may be retried; any other is
// returned again by every later call.
func (d *RequestDecoder) Next() (args [][]byte, raw []byte, err error) {
	if d.err != nil {
		return nil, nil, d.err
	}
	d.release()
	for len(d.spans) == 0 {
		b, err := d.r.Peek(1)
		if err != nil {
			return nil, nil, err
		}
		d.buf, d.spans = d.buf[:0], d.spans[:0]
		d.inline = b[0] != '*'
		if d.inline {
			err = d.readInline()
		} else {
			err = d.readMultibulk()
		}
		if err != nil {
			d.err = err
			return nil, nil, err
		}
	}
	for _, s := range d.spans {
		d.args = append(d.args, d.buf[s.start:s.end:s.end])
	}
	return d.args, d.buf[:d.rawLen:d.rawLen], nil
}

// release forgets the previous command, dropping buffers a large one grew.
func (d *RequestDecoder) release() {
	if cap(d.buf) > keepBuffer {
		d.buf = nil
	}
	if cap(d.spans) > keepArgs {
		d.spans, d.args = nil, nil
	}
	clear(d.args) // let the collector have a dropped buffer
	d.buf, d.spans, d.args = d.buf[:0], d.spans[:0], d.args[:0]
}

// readMultibulk reads "*<n>\r\n" and n bulk strings into d.buf.
func (d *RequestDecoder) readMultibulk() error {
	body, err := d.readHeader(errTooBigMbulkCount)
	if err != nil {
		return err
	}
	n, ok := parseCount(body[1:])
	switch {
	case !ok || n > MaxArgs:
		return errMultibulkLength
	case d.preAuth && n > preAuthMaxArgs:
		return errPreAuthMultibulk
	}
	for ; n > 0; n-- {
		if err := d.readBulk(); err != nil {
			return err
		}
	}
	d.rawLen = len(d.buf)
	return nil
}

// readBulk reads one "$<len>\r\n<bytes>\r\n" argument into d.buf.
func (d *RequestDecoder) readBulk() error {
	body, err := d.readHeader(errTooBigBulkCount)
	if err != nil {
		return err
	}
	if body[0] != '$' {
		c := body[0]
		if c == '\r' || c == '\n' {
			c = ' ' // Redis blanks newlines in error texts
		}
		return protoErr("Protocol error: expected '$', got '" + string([]byte{c}) + "'")
	}
	size, ok := parseLength(body[1:], false)
	switch {
	case !ok || size > d.limits.MaxBulk:
		return errBulkLength
	case d.preAuth && size > preAuthMaxBulk:
		return errPreAuthBulk
	case int64(len(d.buf))+size+2 > d.limits.MaxCommand:
		return errCommandTooBig
	}
	start := len(d.buf)
	if d.buf, err = readFull(d.r, d.buf, size+2); err != nil {
		return err
	}
	end := len(d.buf) - 2
	if d.buf[end] != '\r' || d.buf[end+1] != '\n' {
		return errBulkCRLF
	}
	d.spans = append(d.spans, span{start, end})
	return nil
}

// readHeader reads a header line and returns it without its line end. A
// line that does not end in CRLF, or holds another CR, is read whole and
// returned as is, so its first byte is still there to be judged and its
// length fails to parse.
func (d *RequestDecoder) readHeader(tooBig error) ([]byte, error) {
	start, err := d.readLine(tooBig)
	if err != nil {
		return nil, err
	}
	line := d.buf[start:]
	if body, ok := trimCRLF(line); ok && len(body) > 0 {
		return body, nil
	}
	return line, nil
}

// readInline reads one line and splits it into arguments after it in d.buf.
func (d *RequestDecoder) readInline() error {
	if _, err := d.readLine(errTooBigInline); err != nil {
		return err
	}
	d.rawLen = len(d.buf)
	line := d.buf[:len(d.buf)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if bytes.IndexByte(line, 0) >= 0 {
		return errInlineNUL
	}
	// Unescaped arguments are never longer than the line.
	d.buf = slices.Grow(d.buf, len(line))
	s := splitter{line: line, out: d.buf}
	spans, ok := s.split(d.spans)
	if !ok {
		return errUnbalanced
	}
	d.buf, d.spans = s.out, spans
	return nil
}

// readLine appends the next line, "\n" included, to d.buf and returns
// where it starts. A line longer than MaxInline fails with tooBig.
func (d *RequestDecoder) readLine(tooBig error) (int, error) {
	start := len(d.buf)
	for {
		b, err := peekSome(d.r)
		if len(b) == 0 {
			return 0, unexpected(err)
		}
		i := bytes.IndexByte(b, '\n')
		found := i >= 0
		if !found {
			i = len(b)
		}
		if len(d.buf)-start+i > MaxInline {
			return 0, tooBig
		}
		if found {
			i++
		}
		d.buf = append(d.buf, b[:i]...)
		_, _ = d.r.Discard(i)
		if found {
			return start, nil
		}
	}
}

// parseCount parses a multibulk count as Redis's string2ll does: canonical
// digits with an optional minus sign. A negative count is valid and, like
// zero, makes an empty command.
func parseCount(b []byte) (int64, bool) {
	if len(b) > 1 && b[0] == '-' {
		n, ok := parseLength(b[1:], false)
		return -n, ok && n != 0
	}
	return parseLength(b, false)
}
