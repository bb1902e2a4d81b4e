package resp

import (
	"bufio"
	"strconv"
	"testing"
)

// loopReader repeats data forever, so a benchmark's decoder never reaches
// the end of its input.
type loopReader struct {
	data []byte
	off  int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.data[r.off:])
		n += c
		r.off = (r.off + c) % len(r.data)
	}
	return n, nil
}

func benchmarkRequest(b *testing.B, cmd string) {
	d := NewRequestDecoder(bufio.NewReaderSize(&loopReader{data: []byte(cmd)}, 16<<10), RequestLimits{})
	b.SetBytes(int64(len(cmd)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := d.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRequestSet(b *testing.B) {
	benchmarkRequest(b, "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n")
}

func BenchmarkRequestSetInline(b *testing.B) { benchmarkRequest(b, "SET key value\r\n") }

// benchmarkReply decodes one whole reply per iteration.
func benchmarkReply(b *testing.B, reply string) {
	d := NewReplyDecoder(bufio.NewReaderSize(&loopReader{data: []byte(reply)}, 16<<10), ReplyOptions{})
	b.SetBytes(int64(len(reply)))
	b.ReportAllocs()
	for b.Loop() {
		for {
			t, err := d.Next()
			if err != nil {
				b.Fatal(err)
			}
			if t.Complete {
				break
			}
		}
	}
}

func BenchmarkReplyBulk(b *testing.B) { benchmarkReply(b, "$5\r\nvalue\r\n") }

// BenchmarkReplyHGetAll decodes a RESP3 map of ten fields, as HGETALL gives.
func BenchmarkReplyHGetAll(b *testing.B) {
	reply := AppendMapHeader(nil, 10, RESP3)
	for i := range 10 {
		reply = AppendBulkString(reply, "field"+strconv.Itoa(i))
		reply = AppendBulkString(reply, "value-of-field-"+strconv.Itoa(i))
	}
	benchmarkReply(b, string(reply))
}

func BenchmarkAppendTokenMasked(b *testing.B) {
	toks, err := decodeReplies("$11\r\n4111-1111-1\r\n", ReplyOptions{}, 64, false)
	if err != nil {
		b.Fatal(err)
	}
	mask := []byte("****")
	dst := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		if dst, err = AppendToken(dst[:0], toks[0], mask); err != nil {
			b.Fatal(err)
		}
	}
}
