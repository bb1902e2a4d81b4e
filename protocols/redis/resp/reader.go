package resp

import (
	"bytes"
	"errors"
	"io"
)

// Reader is the buffered input both decoders read from. *bufio.Reader
// satisfies it, and so can a transport's own reader. The decoders rely on
// bufio's contract: Peek(n) with n <= Size() blocks until n bytes are
// buffered or the input fails; Peek(n) with n <= Buffered() and Discard of
// bytes already buffered never read, so the slices a Peek returned stay
// valid until the next Peek or Read; Read may bypass the buffer.
type Reader interface {
	io.Reader
	Peek(n int) ([]byte, error)
	Discard(n int) (discarded int, err error)
	Buffered() int
	Size() int
}

// ProtocolError is malformed input: the stream can no longer be framed, so
// the connection must end. For client commands Msg is the text Redis itself
// sends before closing ("Protocol error: invalid bulk length"), meant to be
// written back as "-ERR " + Msg. Any other error a decoder returns comes from
// the Reader.
type ProtocolError struct {
	Msg string
}

func (e *ProtocolError) Error() string { return e.Msg }

// IsProtocolError reports whether err is, or wraps, a *ProtocolError.
func IsProtocolError(err error) bool {
	var pe *ProtocolError
	return errors.As(err, &pe)
}

func protoErr(msg string) error { return &ProtocolError{Msg: msg} }

// peekSome returns at least one byte, and everything already buffered,
// without consuming it.
func peekSome(r Reader) ([]byte, error) {
	n := r.Buffered()
	if n == 0 {
		n = 1
	}
	return r.Peek(n)
}

// unexpected turns the end of input inside a command or reply into
// io.ErrUnexpectedEOF, so io.EOF only ever means a clean end between them.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readFull appends exactly n bytes from r to dst. It grows dst as data
// arrives rather than by n up front, so a peer that declares a huge length
// and sends nothing costs no memory.
func readFull(r Reader, dst []byte, n int64) ([]byte, error) {
	const step = 64 << 10
	for n > 0 {
		if len(dst) == cap(dst) {
			// Doubling, with the last step cut to what is still due;
			// append's own growth would overshoot large sizes.
			grow := min(max(int64(len(dst)), step), n)
			dst = append(make([]byte, 0, int64(len(dst))+grow), dst...)
		}
		start := len(dst)
		k := int(min(int64(cap(dst)-start), n))
		got, err := io.ReadFull(r, dst[start:start+k])
		dst = dst[:start+got]
		n -= int64(got)
		if err != nil {
			return dst, unexpected(err)
		}
	}
	return dst, nil
}

// parseLength parses the length on a RESP header line in canonical form:
// "0", or digits without a leading zero, or "-1" where null is allowed, as
// Redis's string2ll accepts them (no sign, no spaces, no leading zeros).
// Canonical lengths are what makes re-encoding reproduce the input.
func parseLength(b []byte, allowNull bool) (int64, bool) {
	if allowNull && len(b) == 2 && b[0] == '-' && b[1] == '1' {
		return -1, true
	}
	if len(b) == 0 || len(b) > 18 || (b[0] == '0' && len(b) > 1) {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// trimCRLF returns line without its final "\r\n", and false when the line
// does not end so or holds another CR: RESP lines cannot contain CR or LF.
func trimCRLF(line []byte) ([]byte, bool) {
	n := len(line)
	if n < 2 || line[n-2] != '\r' || line[n-1] != '\n' {
		return nil, false
	}
	body := line[:n-2]
	return body, bytes.IndexByte(body, '\r') < 0
}
