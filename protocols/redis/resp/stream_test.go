package resp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// repeatReader produces pattern repeated up to left bytes, so a test can
// feed a decoder far more input than it ever holds in memory.
type repeatReader struct {
	pattern []byte
	left    int64
	off     int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.pattern[r.off:])
		n += c
		r.off = (r.off + c) % len(r.pattern)
	}
	r.left -= int64(n)
	return n, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// allocated returns the bytes f allocates on the heap.
func allocated(f func()) uint64 {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// bigSizes returns the sizes of the bounded-memory tests: the full ones by
// default, smaller ones under -short.
func bigSizes() (bulk int64, elements int) {
	if testing.Short() {
		return 8 << 20, 100_000
	}
	return 100 << 20, 1_000_000
}

func TestReplyHugeBulkBoundedMemory(t *testing.T) {
	size, _ := bigSizes()
	src := io.MultiReader(
		strings.NewReader("$"+strconv.FormatInt(size, 10)+"\r\n"),
		&repeatReader{pattern: bytes.Repeat([]byte("x"), 4096), left: size},
		strings.NewReader("\r\n+OK\r\n"),
	)
	var got int64
	var chunks int
	var last Token
	alloc := allocated(func() {
		d := NewReplyDecoder(bufio.NewReaderSize(src, 32<<10), ReplyOptions{})
		for {
			tok, err := d.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			if tok.Part == PartChunk {
				got += int64(len(tok.Payload))
				chunks++
				if len(tok.Payload) > DefaultChunkSize {
					t.Errorf("chunk of %d bytes", len(tok.Payload))
					return
				}
			}
			last = tok
		}
	})
	if got != size || describe(last) != "+OK C" {
		t.Fatalf("payload %d bytes in %d chunks, last %s", got, chunks, describe(last))
	}
	if alloc > 1<<20 {
		t.Fatalf("decoding a %d-byte bulk string allocated %d bytes", size, alloc)
	}
	t.Logf("%d bytes in %d chunks, %d bytes allocated", size, chunks, alloc)
}

func TestReplyHugeArrayBoundedMemory(t *testing.T) {
	_, n := bigSizes()
	elem := []byte("$5\r\nvalue\r\n")
	src := io.MultiReader(
		strings.NewReader("*"+strconv.Itoa(n)+"\r\n"),
		&repeatReader{pattern: elem, left: int64(n * len(elem))},
	)
	var tokens, completes int
	alloc := allocated(func() {
		d := NewReplyDecoder(bufio.NewReaderSize(src, 32<<10), ReplyOptions{})
		for {
			tok, err := d.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			tokens++
			if tok.Complete {
				completes++
			}
		}
	})
	if tokens != n+1 || completes != 1 {
		t.Fatalf("%d tokens, %d complete; want %d, 1", tokens, completes, n+1)
	}
	if alloc > 1<<20 {
		t.Fatalf("decoding a %d-element array allocated %d bytes", n, alloc)
	}
}

// TestRequestDeclaredSizeCostsNothing checks that a bulk length the client
// declares but does not send costs no memory, and that one over the limit
// is refused before its payload is read.
func TestRequestDeclaredSizeCostsNothing(t *testing.T) {
	head := "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000000\r\n"
	alloc := allocated(func() {
		d := NewRequestDecoder(newReader(head+"abc", 4096, false), RequestLimits{})
		if _, _, err := d.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("error %v", err)
		}
	})
	if alloc > 1<<20 {
		t.Fatalf("a declared 100 MB argument allocated %d bytes", alloc)
	}

	src := &countingReader{r: io.MultiReader(strings.NewReader(head), &repeatReader{pattern: []byte("v"), left: 100_000_002})}
	d := NewRequestDecoder(bufio.NewReaderSize(src, 4096), RequestLimits{MaxBulk: 1 << 20})
	if _, _, err := d.Next(); err != errBulkLength {
		t.Fatalf("error %v", err)
	}
	if src.n > 4096 {
		t.Fatalf("read %d bytes past a refused header", src.n)
	}
}

// TestRequestHugeArgument decodes a SET with a large value: the argument is
// held whole, as Redis holds it, and memory stays within a small multiple
// of its size.
func TestRequestHugeArgument(t *testing.T) {
	size, _ := bigSizes()
	if raceEnabled {
		size = min(size, 32<<20)
	}
	head := "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$" + strconv.FormatInt(size, 10) + "\r\n"
	src := io.MultiReader(strings.NewReader(head),
		&repeatReader{pattern: bytes.Repeat([]byte("v"), 4096), left: size},
		strings.NewReader("\r\n*1\r\n$4\r\nPING\r\n"))
	d := NewRequestDecoder(bufio.NewReaderSize(src, 16<<10), RequestLimits{})
	var args [][]byte
	var raw []byte
	alloc := allocated(func() {
		var err error
		if args, raw, err = d.Next(); err != nil {
			t.Error(err)
		}
	})
	if len(args) != 3 || int64(len(args[2])) != size || int64(len(raw)) != int64(len(head))+size+2 {
		t.Fatalf("%d args, value %d bytes, raw %d bytes", len(args), len(args[2]), len(raw))
	}
	if alloc > 3*uint64(size) {
		t.Fatalf("a %d-byte argument allocated %d bytes", size, alloc)
	}
	args, _, err := d.Next()
	if err != nil || string(args[0]) != "PING" {
		t.Fatalf("next command %q %v", args, err)
	}
	if cap(d.buf) > keepBuffer {
		t.Fatalf("the large buffer is kept: %d bytes", cap(d.buf))
	}
}
