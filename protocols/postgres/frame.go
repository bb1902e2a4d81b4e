package postgres

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// errTooLarge reports a message whose declared length exceeds the limit.
var errTooLarge = errors.New("message too large")

// frameReader reads whole protocol messages (type byte, int32 length, body).
// It is written by hand because pgproto3's Frontend and Backend decode every
// message into a struct and do not expose the raw frame, and relaying the
// original bytes untouched is what keeps passthrough cheap.
type frameReader struct {
	r   *bufio.Reader
	buf []byte // holds messages larger than r's buffer
	max int    // largest accepted body; 0 means no limit
	// torn is set when a read failed part-way through a large message, so
	// the stream is no longer at a message boundary.
	torn bool
}

func newFrameReader(r io.Reader, size, max int) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, size), max: max}
}

// clientReaders recycles the 16 KiB readers of ended client sessions: a
// client that connects for every request would otherwise allocate one at
// each connect, and the garbage collector would run that much more often.
var clientReaders = sync.Pool{New: func() any { return newFrameReader(nil, 16<<10, 0) }}

// clientReader returns a reader of conn's messages of at most max bytes,
// recycled when one is free; putClientReader gives it back.
func clientReader(conn io.Reader, max int) *frameReader {
	fr := clientReaders.Get().(*frameReader)
	fr.r.Reset(conn)
	fr.max, fr.torn = max, false
	return fr
}

// putClientReader recycles fr once nothing reads through it any more.
func putClientReader(fr *frameReader) {
	fr.r.Reset(nil)
	fr.shrink()
	clientReaders.Put(fr)
}

// clientWriters recycles the 16 KiB writers of ended client sessions, as
// clientReaders does their readers.
var clientWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 16<<10) }}

// clientWriter returns a buffered writer to conn, recycled when one is free.
func clientWriter(conn io.Writer) *bufio.Writer {
	w := clientWriters.Get().(*bufio.Writer)
	w.Reset(conn)
	return w
}

// putClientWriter recycles w; the caller makes sure nothing writes through
// it any more. Unflushed bytes are dropped: the session has ended.
func putClientWriter(w *bufio.Writer) {
	w.Reset(nil)
	clientWriters.Put(w)
}

// next returns the next message: its type, the whole frame (header included)
// and the body. Both slices are valid until the following call.
func (fr *frameReader) next() (typ byte, frame, body []byte, err error) {
	hdr, err := fr.r.Peek(5)
	if err != nil {
		if len(hdr) > 0 && errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, nil, err
	}
	typ = hdr[0]
	n := int(int32(binary.BigEndian.Uint32(hdr[1:])))
	if n < 4 {
		return 0, nil, nil, fmt.Errorf("invalid length %d for message type %q", n, typ)
	}
	if fr.max > 0 && n-4 > fr.max {
		return 0, nil, nil, fmt.Errorf("%w: type %q declares %d bytes, limit is %d", errTooLarge, typ, n-4, fr.max)
	}
	total := n + 1
	if total <= fr.r.Size() {
		frame, err = fr.r.Peek(total)
		if err != nil {
			return 0, nil, nil, eofUnexpected(err)
		}
		// The peeked bytes stay valid until the next read refills the buffer.
		_, _ = fr.r.Discard(total)
		return typ, frame, frame[5:], nil
	}
	if cap(fr.buf) < total {
		fr.buf = make([]byte, total)
	}
	frame = fr.buf[:total]
	if _, err := io.ReadFull(fr.r, frame); err != nil {
		fr.torn = true
		return 0, nil, nil, eofUnexpected(err)
	}
	return typ, frame, frame[5:], nil
}

// shrink drops an oversized buffer kept from a large message so an idle
// session does not pin it.
func (fr *frameReader) shrink() {
	if cap(fr.buf) > 1<<20 {
		fr.buf = nil
	}
}

// buffered reports whether more input is already waiting in memory.
func (fr *frameReader) buffered() bool { return fr.r.Buffered() > 0 }

// atBoundary reports whether everything read so far was whole messages:
// nothing is buffered and no read stopped inside a message.
func (fr *frameReader) atBoundary() bool { return !fr.torn && fr.r.Buffered() == 0 }

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
