package transport

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
)

// BufferSize is the size of pooled Reader and Writer buffers: a session's
// usual messages (statements, rows, replies) fit and are read as views, and
// ten thousand idle sessions hold 320 MiB of buffers between them.
const BufferSize = 16 << 10

// shrinkAbove is the side buffer capacity past which it is dropped once its
// frame is done, so that an idle session does not pin the memory of its
// largest message.
const shrinkAbove = 1 << 20

// ErrTooLarge reports a frame whose declared length exceeds the Reader's
// limit. Next returns it wrapped in a *TooLargeError.
var ErrTooLarge = errors.New("frame too large")

// TooLargeError is the error Next returns for a frame over the limit, before
// reading its body. The header is still buffered, so the caller can Peek it
// to name the message in its protocol's own error.
type TooLargeError struct {
	Length int // declared length of the whole frame, header included
	Limit  int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s: %d bytes declared, limit is %d", ErrTooLarge, e.Length, e.Limit)
}

// Unwrap makes errors.Is(err, ErrTooLarge) hold.
func (e *TooLargeError) Unwrap() error { return ErrTooLarge }

// Framer describes a protocol's frames: a fixed-size header that gives the
// length of the whole frame. PostgreSQL's is a type byte and a 4-byte
// length; MySQL's a 3-byte length and a sequence byte.
type Framer interface {
	// HeaderLen is the size of the header FrameLen reads.
	HeaderLen() int
	// FrameLen returns the length of the whole frame, header included, or
	// an error for a header the protocol does not allow.
	FrameLen(header []byte) (int, error)
}

// Reader reads frames, lines and bytes from a session's socket through a
// buffer. See the package documentation for who may call it.
type Reader struct {
	src        io.Reader
	buf        []byte
	start, end int    // the unread bytes are buf[start:end]
	err        error  // of the last read from src, returned once buf is used up
	side       []byte // holds frames larger than buf
	limit      int    // largest frame Next returns; 0 means none
	torn       bool   // a read failed part-way through a frame
	pooled     bool
}

// readers recycles the Readers of ended sessions: a client that connects for
// every transaction would otherwise allocate a 16 KiB buffer at each connect,
// and the garbage collector would run that much more often.
var readers = sync.Pool{New: func() any {
	return &Reader{buf: make([]byte, BufferSize), pooled: true}
}}

// NewReader returns a Reader of src with a BufferSize buffer, recycled when
// one is free, whose Next accepts frames of at most limit bytes (header
// included; 0 means no limit). Release gives it back.
func NewReader(src io.Reader, limit int) *Reader {
	r := readers.Get().(*Reader)
	r.Reset(src)
	r.limit = limit
	return r
}

// NewReaderSize returns a Reader with a buffer of its own of size bytes, for
// a socket whose usual messages do not fit BufferSize (an upstream's result
// rows). It is not recycled.
func NewReaderSize(src io.Reader, size, limit int) *Reader {
	return &Reader{src: src, buf: make([]byte, max(size, 16)), limit: limit}
}

// Reset makes r read from src, dropping whatever it had buffered and any
// error or torn frame of the previous source. The limit stays.
func (r *Reader) Reset(src io.Reader) {
	r.src = src
	r.start, r.end = 0, 0
	r.err = nil
	r.torn = false
	r.Shrink()
}

// Release gives a Reader from NewReader back for reuse; r must not be used
// afterwards. Buffered bytes are dropped: the session has ended.
func (r *Reader) Release() {
	r.Reset(nil)
	r.side = nil // a new session seldom needs its predecessor's large frames
	if r.pooled {
		r.limit = 0
		readers.Put(r)
	}
}

// Shrink drops a large side buffer kept from a frame larger than the buffer.
// Next does so itself before each frame; Shrink is for a reader set aside
// between frames.
func (r *Reader) Shrink() {
	if cap(r.side) > shrinkAbove {
		r.side = nil
	}
}

// SetLimit changes the largest frame Next accepts (header included; 0: no
// limit), for a stretch of the stream whose frames are known to be small.
func (r *Reader) SetLimit(limit int) { r.limit = limit }

// Buffered returns how many bytes are waiting in memory: an engine flushes
// its replies when none are, since the client waits for them.
func (r *Reader) Buffered() int { return r.end - r.start }

// AtBoundary reports whether everything read so far was whole frames:
// nothing is buffered and no read stopped inside a frame, so the stream can
// be handed to another session (an upstream returned to a pool).
func (r *Reader) AtBoundary() bool { return !r.torn && r.end == r.start }

// Next returns the next frame, header included, as f delimits it. The frame
// is valid until the next call on r. A frame that fits the buffer is a view
// into it, and an error while reading it keeps the bytes read so far
// buffered, so Next may be called again (after a deadline, say). A larger
// frame is read into a side buffer; an error there leaves the stream torn.
func (r *Reader) Next(f Framer) ([]byte, error) {
	if cap(r.side) > shrinkAbove {
		r.side = nil
	}
	h := f.HeaderLen()
	if r.end-r.start < h {
		if err := r.fillFrame(h); err != nil {
			return nil, err
		}
	}
	n, err := f.FrameLen(r.buf[r.start : r.start+h : r.start+h])
	switch {
	case err != nil:
		return nil, err
	case n < h:
		return nil, fmt.Errorf("frame length %d is shorter than its %d-byte header", n, h)
	case r.limit > 0 && n > r.limit:
		return nil, &TooLargeError{Length: n, Limit: r.limit}
	case n > len(r.buf):
		return r.large(n)
	}
	if r.end-r.start < n {
		if err := r.fillFrame(n); err != nil {
			return nil, err
		}
	}
	frame := r.buf[r.start : r.start+n : r.start+n]
	r.start += n
	return frame, nil
}

// fillFrame fills the buffer for Next: a stream that ends inside a frame
// ended unexpectedly.
func (r *Reader) fillFrame(need int) error {
	if need > len(r.buf) {
		return fmt.Errorf("frame header of %d bytes does not fit a %d-byte buffer", need, len(r.buf))
	}
	err := r.fill(need)
	if err == io.EOF && r.end > r.start {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// large reads a frame of n bytes, more than the buffer holds, into the side
// buffer: first what is buffered, then the rest straight from the source.
func (r *Reader) large(n int) ([]byte, error) {
	if cap(r.side) < n {
		r.side = make([]byte, n)
	}
	frame := r.side[:n:n]
	k := copy(frame, r.buf[r.start:r.end])
	r.start, r.end = 0, 0
	err := r.takeErr()
	if err == nil {
		_, err = io.ReadFull(r.src, frame[k:])
	}
	if err != nil {
		r.torn = true
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return frame, nil
}

// fill reads from the source until at least need bytes are buffered; need
// is at most len(r.buf). It moves the unread bytes to the front first, as
// bufio does, so each read gets as much room as there is.
func (r *Reader) fill(need int) error {
	if r.start > 0 {
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
	}
	for empty := 0; r.end < need; {
		if r.err != nil {
			return r.takeErr()
		}
		n, err := r.src.Read(r.buf[r.end:])
		if n < 0 || n > len(r.buf)-r.end {
			return fmt.Errorf("source returned %d bytes for a %d-byte read", n, len(r.buf)-r.end)
		}
		r.end += n
		r.err = err
		if n > 0 || err != nil {
			empty = 0
		} else if empty++; empty >= 100 {
			r.err = io.ErrNoProgress
		}
	}
	return nil
}

func (r *Reader) takeErr() error {
	err := r.err
	r.err = nil
	return err
}

// Peek returns the next n bytes without consuming them, valid until the next
// call on r. With fewer available it returns those and the error that
// stopped it, bufio.ErrBufferFull when n exceeds the buffer.
func (r *Reader) Peek(n int) ([]byte, error) {
	if n < 0 {
		return nil, bufio.ErrNegativeCount
	}
	if r.end-r.start < n {
		if n > len(r.buf) {
			return r.buf[r.start:r.end], bufio.ErrBufferFull
		}
		if err := r.fill(n); err != nil {
			return r.buf[r.start:r.end], err
		}
	}
	return r.buf[r.start : r.start+n : r.start+n], nil
}

// Discard skips the next n bytes, reading them if they are not buffered
// yet, and returns how many it skipped. Skipping fewer than n after skipping
// some leaves the stream torn.
func (r *Reader) Discard(n int) (int, error) {
	if n < 0 {
		return 0, bufio.ErrNegativeCount
	}
	done := 0
	for {
		k := min(n-done, r.end-r.start)
		r.start += k
		done += k
		if done == n {
			return n, nil
		}
		if err := r.fill(1); err != nil {
			r.torn = r.torn || done > 0
			return done, err
		}
	}
}

// Read reads into p as bufio.Reader.Read does: from the buffer when it holds
// anything, else with one read of the source, straight into p when p is at
// least as large as the buffer.
func (r *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		if r.end > r.start {
			return 0, nil
		}
		return 0, r.takeErr()
	}
	if r.end == r.start {
		if r.err != nil {
			return 0, r.takeErr()
		}
		if len(p) >= len(r.buf) {
			return r.src.Read(p)
		}
		r.start, r.end = 0, 0
		if err := r.fill(1); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.buf[r.start:r.end])
	r.start += n
	return n, nil
}

// ReadSlice returns the bytes up to and including the next delim, as a view
// valid until the next call on r; line protocols (RESP) read a line with
// ReadSlice('\n'). Unlike bufio's, it consumes nothing unless it returns a
// whole line: a line longer than the buffer is bufio.ErrBufferFull, and a
// stream that ends inside a line is io.ErrUnexpectedEOF.
func (r *Reader) ReadSlice(delim byte) ([]byte, error) {
	scanned := 0
	for {
		if i := bytes.IndexByte(r.buf[r.start+scanned:r.end], delim); i >= 0 {
			n := scanned + i + 1
			line := r.buf[r.start : r.start+n : r.start+n]
			r.start += n
			return line, nil
		}
		scanned = r.end - r.start
		if scanned == len(r.buf) {
			return nil, bufio.ErrBufferFull
		}
		if err := r.fill(scanned + 1); err != nil {
			if err == io.EOF && r.end > r.start {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

var _ io.Reader = (*Reader)(nil)
