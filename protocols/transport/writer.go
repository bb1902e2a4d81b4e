package transport

import (
	"bufio"
	"io"
	"sync"
)

// Writer buffers what a session writes to a socket until Flush. It is
// bufio.Writer with a BufferSize buffer, recycled between sessions; the
// engine flushes when its reader has nothing more buffered, so a pipeline of
// requests is answered with one write. Once a write fails, every later
// Write and Flush returns that error.
type Writer struct {
	bw *bufio.Writer
}

// writers recycles the Writers of ended sessions, as readers does their
// Readers.
var writers = sync.Pool{New: func() any {
	return &Writer{bw: bufio.NewWriterSize(nil, BufferSize)}
}}

// NewWriter returns a Writer to dst, recycled when one is free. Release
// gives it back.
func NewWriter(dst io.Writer) *Writer {
	w := writers.Get().(*Writer)
	w.bw.Reset(dst)
	return w
}

// Write buffers p, writing the buffer out whenever it fills; a p larger
// than the buffer goes straight to the destination once the buffer is
// empty.
func (w *Writer) Write(p []byte) (int, error) { return w.bw.Write(p) }

// Flush writes out everything buffered.
func (w *Writer) Flush() error { return w.bw.Flush() }

// Buffered returns how many bytes wait for Flush.
func (w *Writer) Buffered() int { return w.bw.Buffered() }

// Reset makes w write to dst, dropping whatever it had buffered and any
// error of the previous destination.
func (w *Writer) Reset(dst io.Writer) { w.bw.Reset(dst) }

// Release gives w back for reuse; the caller makes sure nothing writes
// through it any more. Unflushed bytes are dropped: the session has ended.
func (w *Writer) Release() {
	w.bw.Reset(nil)
	writers.Put(w)
}

var _ io.Writer = (*Writer)(nil)
