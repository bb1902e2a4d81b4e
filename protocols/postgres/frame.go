package postgres

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/airlock-gw/airlock/protocols/transport"
)

// errTooLarge reports a message whose declared length exceeds the limit.
var errTooLarge = errors.New("message too large")

// frames delimits PostgreSQL messages for the transport: a type byte, then
// an int32 length that counts itself and the body.
type frames struct{}

func (frames) HeaderLen() int { return 5 }

func (frames) FrameLen(h []byte) (int, error) {
	n := int(int32(binary.BigEndian.Uint32(h[1:])))
	if n < 4 {
		return 0, fmt.Errorf("invalid length %d for message type %q", n, h[0])
	}
	return n + 1, nil
}

// frameReader reads whole protocol messages (type byte, int32 length, body)
// through the transport's buffered reader, which hands back each frame as
// it arrived: relaying the original bytes untouched is what keeps
// passthrough cheap.
type frameReader struct {
	r   *transport.Reader
	max int // largest accepted body; 0 means no limit
}

func newFrameReader(r io.Reader, size, max int) *frameReader {
	return &frameReader{r: transport.NewReaderSize(r, size, limitOf(max)), max: max}
}

// limitOf is the transport's frame limit (header included) for a body
// limit of max.
func limitOf(max int) int {
	if max <= 0 {
		return 0
	}
	return max + 5
}

// clientReader returns a reader of conn's messages of at most max bytes,
// on a recycled buffer (see transport.NewReader); putClientReader gives
// it back.
func clientReader(conn io.Reader, max int) *frameReader {
	return &frameReader{r: transport.NewReader(conn, limitOf(max)), max: max}
}

// putClientReader recycles fr's buffer once nothing reads through it.
func putClientReader(fr *frameReader) { fr.r.Release() }

// clientWriter returns a buffered writer to conn, recycled when one is free.
func clientWriter(conn io.Writer) *transport.Writer { return transport.NewWriter(conn) }

// putClientWriter recycles w; the caller makes sure nothing writes through
// it any more. Unflushed bytes are dropped: the session has ended.
func putClientWriter(w *transport.Writer) { w.Release() }

// next returns the next message: its type, the whole frame (header included)
// and the body. Both slices are valid until the following call.
func (fr *frameReader) next() (typ byte, frame, body []byte, err error) {
	frame, err = fr.r.Next(frames{})
	if err != nil {
		var tl *transport.TooLargeError
		if errors.As(err, &tl) {
			hdr, _ := fr.r.Peek(1)
			if len(hdr) == 1 {
				typ = hdr[0]
			}
			return 0, nil, nil, fmt.Errorf("%w: type %q declares %d bytes, limit is %d", errTooLarge, typ, tl.Length-5, fr.max)
		}
		return 0, nil, nil, err
	}
	return frame[0], frame, frame[5:], nil
}

// setMax changes the largest accepted body (0: no limit).
func (fr *frameReader) setMax(max int) {
	fr.max = max
	fr.r.SetLimit(limitOf(max))
}

// shrink drops an oversized buffer kept from a large message so an idle
// session does not pin it.
func (fr *frameReader) shrink() { fr.r.Shrink() }

// buffered reports whether more input is already waiting in memory.
func (fr *frameReader) buffered() bool { return fr.r.Buffered() > 0 }

// atBoundary reports whether everything read so far was whole messages:
// nothing is buffered and no read stopped inside a message.
func (fr *frameReader) atBoundary() bool { return fr.r.AtBoundary() }

func eofUnexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// appendHeader starts a message of type typ in dst and returns the offset of
// its length field, to be completed by finishMessage.
func beginMessage(dst []byte, typ byte) ([]byte, int) {
	dst = append(dst, typ, 0, 0, 0, 0)
	return dst, len(dst) - 4
}

func finishMessage(dst []byte, sp int) []byte {
	binary.BigEndian.PutUint32(dst[sp:], uint32(len(dst)-sp))
	return dst
}
