package transport

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// chunkReader returns src in reads of sizes taken in turn from sizes, so
// that frames and headers straddle reads in every way the input asks for.
type chunkReader struct {
	src   []byte
	sizes []byte
	i     int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.src) == 0 {
		return 0, io.EOF
	}
	n := len(p)
	if len(c.sizes) > 0 {
		n = min(n, int(c.sizes[c.i%len(c.sizes)])+1)
		c.i++
	}
	n = copy(p, c.src[:min(n, len(c.src))])
	c.src = c.src[n:]
	return n, nil
}

// FuzzNext reads arbitrary input as 2-byte length-prefixed frames, through
// a buffer of 16 bytes up to BufferSize, under a limit: Next never panics,
// never returns a frame over the limit, and the frames it returns are the
// input's prefix, in order, with nothing lost or added.
func FuzzNext(f *testing.F) {
	f.Add([]byte{0, 4, 'a', 'b', 0, 2}, []byte{0}, uint16(0), uint8(0))
	f.Add([]byte{0, 40, 1, 2, 3}, []byte{3, 7}, uint16(100), uint8(16))
	f.Add(append([]byte{0, 40}, make([]byte, 38)...), []byte{200}, uint16(39), uint8(16))
	f.Add([]byte{0, 1, 0, 0}, []byte(nil), uint16(0), uint8(255))
	f.Fuzz(func(t *testing.T, input, sizes []byte, limit uint16, bufSize uint8) {
		src := &chunkReader{src: input, sizes: sizes}
		r := NewReader(src, int(limit))
		if bufSize > 0 {
			r = NewReaderSize(src, int(bufSize), int(limit))
		}
		defer r.Release()
		var got []byte
		var err error
		for {
			var frame []byte
			if frame, err = r.Next(u16Framer{}); err != nil {
				break
			}
			if limit > 0 && len(frame) > int(limit) {
				t.Fatalf("frame of %d bytes over the limit %d", len(frame), limit)
			}
			if len(frame) < 2 || int(frame[0])<<8|int(frame[1]) != len(frame) {
				t.Fatalf("frame %x does not match its header", frame)
			}
			got = append(got, frame...)
		}
		if !bytes.Equal(got, input[:len(got)]) {
			t.Fatalf("frames %x are not the input's prefix %x", got, input[:len(got)])
		}
		if (err == io.EOF) != (len(got) == len(input)) {
			t.Fatalf("ended with %v after %d of %d bytes", err, len(got), len(input))
		}
		if errors.Is(err, ErrTooLarge) && r.Buffered() < 2 {
			t.Fatalf("refused a frame with %d bytes of its header buffered", r.Buffered())
		}
	})
}
