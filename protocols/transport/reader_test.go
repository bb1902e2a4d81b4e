package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"
)

// pgFramer delimits PostgreSQL messages: a type byte and a 4-byte length
// that counts itself and the body.
type pgFramer struct{}

func (pgFramer) HeaderLen() int { return 5 }

func (pgFramer) FrameLen(h []byte) (int, error) {
	n := int(int32(binary.BigEndian.Uint32(h[1:])))
	if n < 4 {
		return 0, fmt.Errorf("invalid length %d for message type %q", n, h[0])
	}
	return n + 1, nil
}

// u16Framer delimits frames by a 2-byte length that counts the whole frame,
// so a header can declare a frame shorter than itself.
type u16Framer struct{}

func (u16Framer) HeaderLen() int                 { return 2 }
func (u16Framer) FrameLen(h []byte) (int, error) { return int(binary.BigEndian.Uint16(h)), nil }

func pgMsg(typ byte, body string) []byte {
	b := []byte{typ, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(body)+4))
	return append(b, body...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// step is one Read of a scriptedReader.
type step struct {
	data string
	err  error
}

// scriptedReader returns its steps one Read each, then io.EOF.
type scriptedReader struct{ steps []step }

func (s *scriptedReader) Read(p []byte) (int, error) {
	if len(s.steps) == 0 {
		return 0, io.EOF
	}
	st := &s.steps[0]
	n := copy(p, st.data)
	st.data = st.data[n:]
	if st.data != "" {
		return n, nil
	}
	err := st.err
	s.steps = s.steps[1:]
	return n, err
}

// readFrames calls Next until it fails, copying each frame.
func readFrames(r *Reader, f Framer) ([]string, error) {
	var frames []string
	for {
		frame, err := r.Next(f)
		if err != nil {
			return frames, err
		}
		frames = append(frames, string(frame))
	}
}

func TestNext(t *testing.T) {
	big := pgMsg('D', strings.Repeat("x", 40))
	tests := []struct {
		name     string
		src      func() io.Reader
		size     int // buffer size; 0 is a pooled reader
		limit    int
		framer   Framer
		want     []string
		wantErr  error
		boundary bool
	}{
		{
			name:     "whole frames",
			src:      func() io.Reader { return bytes.NewReader(cat(pgMsg('Q', "one\x00"), pgMsg('S', ""))) },
			want:     []string{string(pgMsg('Q', "one\x00")), string(pgMsg('S', ""))},
			wantErr:  io.EOF,
			boundary: true,
		},
		{
			name: "one byte per read",
			src: func() io.Reader {
				return iotest.OneByteReader(bytes.NewReader(cat(pgMsg('Q', "one\x00"), pgMsg('S', ""))))
			},
			want:     []string{string(pgMsg('Q', "one\x00")), string(pgMsg('S', ""))},
			wantErr:  io.EOF,
			boundary: true,
		},
		{
			name:     "end of stream with the last bytes",
			src:      func() io.Reader { return iotest.DataErrReader(bytes.NewReader(pgMsg('Q', "one\x00"))) },
			want:     []string{string(pgMsg('Q', "one\x00"))},
			wantErr:  io.EOF,
			boundary: true,
		},
		{
			name:     "frame the size of the buffer",
			src:      func() io.Reader { return bytes.NewReader(pgMsg('Q', strings.Repeat("y", 11))) },
			size:     16,
			want:     []string{string(pgMsg('Q', strings.Repeat("y", 11)))},
			wantErr:  io.EOF,
			boundary: true,
		},
		{
			name:     "frame larger than the buffer, then a small one",
			src:      func() io.Reader { return iotest.HalfReader(bytes.NewReader(cat(big, pgMsg('C', "ok")))) },
			size:     16,
			want:     []string{string(big), string(pgMsg('C', "ok"))},
			wantErr:  io.EOF,
			boundary: true,
		},
		{
			name:    "frame over the limit",
			src:     func() io.Reader { return bytes.NewReader(big) },
			limit:   len(big) - 1,
			wantErr: &TooLargeError{Length: len(big), Limit: len(big) - 1},
		},
		{
			name:    "end of stream inside a header",
			src:     func() io.Reader { return bytes.NewReader(cat(pgMsg('S', ""), []byte{'Q', 0})) },
			want:    []string{string(pgMsg('S', ""))},
			wantErr: io.ErrUnexpectedEOF,
		},
		{
			name:    "end of stream inside a buffered frame",
			src:     func() io.Reader { return bytes.NewReader(pgMsg('Q', "one\x00")[:7]) },
			wantErr: io.ErrUnexpectedEOF,
		},
		{
			name:    "end of stream inside a large frame",
			src:     func() io.Reader { return bytes.NewReader(big[:30]) },
			size:    16,
			wantErr: io.ErrUnexpectedEOF,
		},
		{
			name:    "header the framer refuses",
			src:     func() io.Reader { return bytes.NewReader([]byte{'Q', 0, 0, 0, 3}) },
			wantErr: errors.New(`invalid length 3 for message type 'Q'`),
		},
		{
			name:    "length shorter than the header",
			src:     func() io.Reader { return bytes.NewReader([]byte{0, 1, 'x'}) },
			framer:  u16Framer{},
			wantErr: errors.New("frame length 1 is shorter than its 2-byte header"),
		},
		{
			name:     "empty stream",
			src:      func() io.Reader { return bytes.NewReader(nil) },
			wantErr:  io.EOF,
			boundary: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(tc.src(), tc.limit)
			if tc.size > 0 {
				r = NewReaderSize(tc.src(), tc.size, tc.limit)
			}
			defer r.Release()
			f := tc.framer
			if f == nil {
				f = pgFramer{}
			}
			got, err := readFrames(r, f)
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("frames %q, want %q", got, tc.want)
			}
			if !sameError(err, tc.wantErr) {
				t.Errorf("error %v, want %v", err, tc.wantErr)
			}
			if r.AtBoundary() != tc.boundary {
				t.Errorf("AtBoundary %v, want %v (buffered %d, torn %v)", r.AtBoundary(), tc.boundary, r.Buffered(), r.torn)
			}
		})
	}
}

// sameError compares sentinels with errors.Is and other errors by text.
func sameError(err, want error) bool {
	if err == nil || want == nil {
		return err == want
	}
	return errors.Is(err, want) || err.Error() == want.Error()
}

// TestNextTooLarge checks that a frame over the limit is refused before its
// body is read, with an error that carries the lengths, and that its header
// stays buffered for the caller to name the message.
func TestNextTooLarge(t *testing.T) {
	msg := pgMsg('Q', strings.Repeat("x", 100))
	src := iotest.OneByteReader(bytes.NewReader(msg))
	r := NewReader(src, 50)
	defer r.Release()
	_, err := r.Next(pgFramer{})
	var tl *TooLargeError
	if !errors.As(err, &tl) || !errors.Is(err, ErrTooLarge) || tl.Length != len(msg) || tl.Limit != 50 {
		t.Fatalf("error %#v, want a TooLargeError of %d bytes, limit 50", err, len(msg))
	}
	if hdr, err := r.Peek(5); err != nil || hdr[0] != 'Q' {
		t.Errorf("header after the refusal: %q %v", hdr, err)
	}
	if r.Buffered() != 5 {
		t.Errorf("%d bytes read from the source, want the header's 5 only", r.Buffered())
	}
}

// TestNextResumes checks that a frame whose read failed part-way (a
// deadline) is read whole by the next call, and that a large frame's
// failure leaves the stream torn instead.
func TestNextResumes(t *testing.T) {
	msg := pgMsg('Q', "select 1\x00")
	src := &scriptedReader{steps: []step{{string(msg[:3]), nil}, {string(msg[3:8]), os.ErrDeadlineExceeded}, {string(msg[8:]), nil}}}
	r := NewReader(src, 0)
	defer r.Release()
	if _, err := r.Next(pgFramer{}); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("first call: %v, want the deadline", err)
	}
	if r.AtBoundary() {
		t.Error("at a boundary with half a frame buffered")
	}
	frame, err := r.Next(pgFramer{})
	if err != nil || !bytes.Equal(frame, msg) {
		t.Fatalf("second call: %q %v, want %q", frame, err, msg)
	}
	if !r.AtBoundary() {
		t.Error("not at a boundary after a whole frame")
	}

	big := pgMsg('D', strings.Repeat("x", 40))
	src = &scriptedReader{steps: []step{{string(big[:20]), os.ErrDeadlineExceeded}, {string(big[20:]), nil}}}
	r2 := NewReaderSize(src, 16, 0)
	if _, err := r2.Next(pgFramer{}); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("large frame: %v, want the deadline", err)
	}
	if r2.AtBoundary() {
		t.Error("a large frame's failed read left the stream at a boundary")
	}
}

// TestFramesAreViews checks that a frame that fits is a view into the
// buffer, capped so that appending to it cannot overwrite the next frame.
func TestFramesAreViews(t *testing.T) {
	r := NewReader(bytes.NewReader(cat(pgMsg('Q', "a\x00"), pgMsg('Q', "b\x00"))), 0)
	defer r.Release()
	first, _ := r.Next(pgFramer{})
	if &first[0] != &r.buf[0] {
		t.Error("the frame is a copy")
	}
	_ = append(first, 'X')
	second, err := r.Next(pgFramer{})
	if err != nil || !bytes.Equal(second, pgMsg('Q', "b\x00")) {
		t.Errorf("second frame %q %v after appending to the first", second, err)
	}
}

func TestPeekDiscard(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		peek    int
		want    string
		wantErr error
		discard int
		skipped int
		rest    string
		torn    bool
	}{
		{name: "peek then discard", input: "hello world", peek: 5, want: "hello", discard: 6, skipped: 6, rest: "world"},
		{name: "peek past the end", input: "hi", peek: 5, want: "hi", wantErr: io.EOF, discard: 2, skipped: 2},
		{name: "peek past the buffer", input: strings.Repeat("z", 20), peek: 17, want: "", wantErr: bufio.ErrBufferFull, discard: 20, skipped: 20},
		{name: "discard past the buffer", input: strings.Repeat("z", 40) + "tail", peek: 1, want: "z", discard: 40, skipped: 40, rest: "tail"},
		{name: "discard past the end", input: "abc", peek: 0, want: "", discard: 5, skipped: 3, torn: true},
		{name: "negative peek", input: "abc", peek: -1, wantErr: bufio.ErrNegativeCount, rest: "abc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReaderSize(iotest.HalfReader(strings.NewReader(tc.input)), 16, 0)
			got, err := r.Peek(tc.peek)
			if string(got) != tc.want || !sameError(err, tc.wantErr) {
				t.Errorf("Peek(%d) = %q %v, want %q %v", tc.peek, got, err, tc.want, tc.wantErr)
			}
			if n, _ := r.Discard(tc.discard); n != tc.skipped {
				t.Errorf("Discard(%d) skipped %d, want %d", tc.discard, n, tc.skipped)
			}
			rest, _ := io.ReadAll(r)
			if string(rest) != tc.rest {
				t.Errorf("rest %q, want %q", rest, tc.rest)
			}
			// Everything is read now: only a torn stream is off a boundary.
			if r.AtBoundary() == tc.torn {
				t.Errorf("AtBoundary %v, want %v", r.AtBoundary(), !tc.torn)
			}
		})
	}
}

func TestReadSlice(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    []string
		wantErr error
		left    int // bytes still buffered after the error
	}{
		{name: "lines", input: "*1\r\n$4\r\nPING\r\n", want: []string{"*1\r\n", "$4\r\n", "PING\r\n"}, wantErr: io.EOF},
		{name: "unterminated line", input: "+OK\r\n-ERR", want: []string{"+OK\r\n"}, wantErr: io.ErrUnexpectedEOF, left: 4},
		{name: "line longer than the buffer", input: strings.Repeat("a", 20) + "\n", wantErr: bufio.ErrBufferFull, left: 16},
		{name: "line the size of the buffer", input: strings.Repeat("a", 15) + "\n", want: []string{strings.Repeat("a", 15) + "\n"}, wantErr: io.EOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReaderSize(iotest.OneByteReader(strings.NewReader(tc.input)), 16, 0)
			var got []string
			var err error
			for {
				var line []byte
				if line, err = r.ReadSlice('\n'); err != nil {
					break
				}
				got = append(got, string(line))
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") || !errors.Is(err, tc.wantErr) {
				t.Errorf("lines %q, %v; want %q, %v", got, err, tc.want, tc.wantErr)
			}
			if r.Buffered() != tc.left {
				t.Errorf("%d bytes buffered after the error, want %d", r.Buffered(), tc.left)
			}
		})
	}
}

// TestRead checks Read against the bytes it was given, whatever the sizes
// of the reads, mixed with frames.
func TestRead(t *testing.T) {
	input := cat(pgMsg('Q', "x\x00"), []byte(strings.Repeat("0123456789", 10)))
	for _, size := range []int{1, 7, 16, 64, 200} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			r := NewReaderSize(iotest.HalfReader(bytes.NewReader(input)), 16, 0)
			if _, err := r.Next(pgFramer{}); err != nil {
				t.Fatal(err)
			}
			var got []byte
			p := make([]byte, size)
			for {
				n, err := r.Read(p)
				got = append(got, p[:n]...)
				if err == io.EOF {
					break
				} else if err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(got, input[7:]) {
				t.Errorf("read %q, want %q", got, input[7:])
			}
		})
	}
}

// TestReaderRecycled checks that a recycled Reader keeps nothing of its
// previous session: not its unread bytes, not a torn stream, not its limit.
func TestReaderRecycled(t *testing.T) {
	first := NewReader(bytes.NewReader(cat(pgMsg('Q', "one\x00"), pgMsg('Q', "left\x00"))), 12)
	if _, err := first.Next(pgFramer{}); err != nil {
		t.Fatal(err)
	}
	first.torn = true
	first.Release()
	for range 4 { // the pool may hand out another reader; check a few
		r := NewReader(bytes.NewReader(pgMsg('Q', "a longer statement\x00")), 0)
		if !r.AtBoundary() || r.limit != 0 || r.err != nil || r.src == nil {
			t.Fatalf("a recycled reader kept state: boundary %v, limit %d, err %v", r.AtBoundary(), r.limit, r.err)
		}
		frame, err := r.Next(pgFramer{})
		if err != nil || !bytes.Equal(frame, pgMsg('Q', "a longer statement\x00")) {
			t.Fatalf("read %q %v", frame, err)
		}
		defer r.Release()
	}
}

// TestShrink checks that a side buffer past shrinkAbove is dropped before
// the next frame, and a smaller one kept for reuse.
func TestShrink(t *testing.T) {
	huge := pgMsg('D', strings.Repeat("h", shrinkAbove+10))
	mid := pgMsg('D', strings.Repeat("m", 100))
	r := NewReaderSize(bytes.NewReader(cat(huge, mid, pgMsg('C', ""))), 64, 0)
	if _, err := r.Next(pgFramer{}); err != nil || cap(r.side) <= shrinkAbove {
		t.Fatalf("huge frame: %v, side %d", err, cap(r.side))
	}
	if _, err := r.Next(pgFramer{}); err != nil || cap(r.side) != len(mid) {
		t.Fatalf("after the huge frame: %v, side %d, want it dropped and %d allocated", err, cap(r.side), len(mid))
	}
	if _, err := r.Next(pgFramer{}); err != nil || cap(r.side) != len(mid) {
		t.Fatalf("small frame: %v, side %d, want %d kept", err, cap(r.side), len(mid))
	}
}

// repeatReader returns its pattern over and over, without end.
type repeatReader struct {
	pattern []byte
	off     int
}

func (s *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], s.pattern[s.off:])
		n += k
		s.off = (s.off + k) % len(s.pattern)
	}
	return n, nil
}

// TestNoAllocs checks that the hot calls allocate nothing once warm: a
// session reads tens of thousands of frames a second through them.
func TestNoAllocs(t *testing.T) {
	rows := cat(pgMsg('D', strings.Repeat("r", 57)), pgMsg('C', "SELECT 1\x00"), pgMsg('Z', "I"))
	large := pgMsg('D', strings.Repeat("L", 3*BufferSize))
	tests := []struct {
		name    string
		pattern []byte
		call    func(r *Reader) error
	}{
		{"Next", rows, func(r *Reader) error { _, err := r.Next(pgFramer{}); return err }},
		{"Next large", large, func(r *Reader) error { _, err := r.Next(pgFramer{}); return err }},
		{"Peek and Discard", rows, func(r *Reader) error {
			if _, err := r.Peek(5); err != nil {
				return err
			}
			_, err := r.Discard(3)
			return err
		}},
		{"ReadSlice", []byte("$5\r\nhello\r\n"), func(r *Reader) error { _, err := r.ReadSlice('\n'); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(&repeatReader{pattern: tc.pattern}, 0)
			defer r.Release()
			if err := tc.call(r); err != nil { // warm: the side buffer
				t.Fatal(err)
			}
			var err error
			if n := testing.AllocsPerRun(1000, func() { err = cmpErr(err, tc.call(r)) }); n != 0 {
				t.Errorf("%v allocations per call, want 0", n)
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func cmpErr(old, err error) error {
	if old != nil {
		return old
	}
	return err
}
