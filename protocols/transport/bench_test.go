package transport

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

// bufioFrames is protocols/postgres's frameReader.next, the reading this
// package replaces, kept here to compare Next with.
type bufioFrames struct {
	r   *bufio.Reader
	buf []byte
}

func (fr *bufioFrames) next() ([]byte, error) {
	hdr, err := fr.r.Peek(5)
	if err != nil {
		return nil, err
	}
	n := int(int32(binary.BigEndian.Uint32(hdr[1:])))
	if n < 4 {
		return nil, errors.New("invalid length")
	}
	total := n + 1
	if total <= fr.r.Size() {
		frame, err := fr.r.Peek(total)
		if err != nil {
			return nil, err
		}
		_, _ = fr.r.Discard(total)
		return frame, nil
	}
	if cap(fr.buf) < total {
		fr.buf = make([]byte, total)
	}
	frame := fr.buf[:total]
	if _, err := io.ReadFull(fr.r, frame); err != nil {
		return nil, err
	}
	return frame, nil
}

// benchStreams are what a session reads: the rows of a result (DataRow,
// CommandComplete, ReadyForQuery), and rows larger than the buffer.
var benchStreams = []struct {
	name    string
	pattern []byte
}{
	{"rows", cat(pgMsg('D', strings.Repeat("r", 57)), pgMsg('D', strings.Repeat("s", 120)), pgMsg('C', "SELECT 2\x00"), pgMsg('Z', "I"))},
	{"large", pgMsg('D', strings.Repeat("L", 64<<10))},
}

func BenchmarkNext(b *testing.B) {
	for _, st := range benchStreams {
		b.Run(st.name+"/Reader", func(b *testing.B) {
			r := NewReader(&repeatReader{pattern: st.pattern}, 0)
			defer r.Release()
			b.SetBytes(int64(len(st.pattern)))
			b.ReportAllocs()
			frames := 0
			for b.Loop() {
				for n := 0; n < len(st.pattern); frames++ {
					frame, err := r.Next(pgFramer{})
					if err != nil {
						b.Fatal(err)
					}
					n += len(frame)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(frames), "ns/frame")
		})
		b.Run(st.name+"/bufio", func(b *testing.B) {
			fr := &bufioFrames{r: bufio.NewReaderSize(&repeatReader{pattern: st.pattern}, BufferSize)}
			b.SetBytes(int64(len(st.pattern)))
			b.ReportAllocs()
			frames := 0
			for b.Loop() {
				for n := 0; n < len(st.pattern); frames++ {
					frame, err := fr.next()
					if err != nil {
						b.Fatal(err)
					}
					n += len(frame)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(frames), "ns/frame")
		})
	}
}

func BenchmarkPeekDiscard(b *testing.B) {
	r := NewReader(&repeatReader{pattern: benchStreams[0].pattern}, 0)
	defer r.Release()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Peek(5); err != nil {
			b.Fatal(err)
		}
		if _, err := r.Discard(5); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadSlice(b *testing.B) {
	r := NewReader(&repeatReader{pattern: []byte("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n")}, 0)
	defer r.Release()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.ReadSlice('\n'); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriter(b *testing.B) {
	w := NewWriter(io.Discard)
	defer w.Release()
	row := pgMsg('D', strings.Repeat("r", 57))
	b.SetBytes(int64(len(row)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := w.Write(row); err != nil {
			b.Fatal(err)
		}
		if w.Buffered() > BufferSize/2 {
			_ = w.Flush()
		}
	}
}

// BenchmarkConnect measures what a session that connects per transaction
// pays for its buffers: a pooled Reader and Writer, taken and given back.
func BenchmarkConnect(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		r, w := NewReader(nil, 0), NewWriter(nil)
		r.Release()
		w.Release()
	}
}
