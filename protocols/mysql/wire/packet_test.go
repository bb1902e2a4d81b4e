package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

func payloadOf(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func TestPacketRoundTrip(t *testing.T) {
	cases := []struct {
		name   string
		size   int
		frames int
	}{
		{"empty", 0, 1},
		{"small", 5, 1},
		{"one below a chunk", MaxChunk - 1, 1},
		{"exactly a chunk", MaxChunk, 2},
		{"a chunk and a bit", MaxChunk + 5, 2},
		{"two chunks", 2 * MaxChunk, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			payload := payloadOf(tc.size)
			wire, next := AppendPacket(nil, 3, payload)
			if want := uint8(3 + tc.frames); next != want {
				t.Fatalf("next seq %d, want %d", next, want)
			}
			if want := tc.size + 4*tc.frames; len(wire) != want {
				t.Fatalf("wire length %d, want %d", len(wire), want)
			}
			stream := append(append([]byte(nil), wire...), 1, 0, 0, next, 0xaa)
			readers := map[string]func() (Packet, Packet, error){
				"buffered small window": func() (Packet, Packet, error) {
					r := NewPacketReader(bufio.NewReaderSize(bytes.NewReader(stream), 16), 0)
					return twoPackets(r.Next)
				},
				"buffered large window": func() (Packet, Packet, error) {
					r := NewPacketReader(bufio.NewReaderSize(bytes.NewReader(stream), 1<<16), 0)
					return twoPackets(r.Next)
				},
				"exact": func() (Packet, Packet, error) {
					br := bytes.NewReader(stream)
					return twoPackets(func() (Packet, error) { return ReadPacket(br, 0) })
				},
			}
			for name, read := range readers {
				p, after, err := read()
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if p.Seq != 3 || p.Frames != tc.frames || p.NextSeq() != next {
					t.Errorf("%s: seq %d frames %d next %d", name, p.Seq, p.Frames, p.NextSeq())
				}
				if !bytes.Equal(p.Payload, payload) || !bytes.Equal(p.Raw, wire) {
					t.Errorf("%s: payload or raw bytes differ", name)
				}
				if after.Seq != next || !bytes.Equal(after.Payload, []byte{0xaa}) {
					t.Errorf("%s: following packet %+v", name, after)
				}
			}
		})
	}
}

// twoPackets reads two packets, copying the first before the second
// invalidates it.
func twoPackets(next func() (Packet, error)) (Packet, Packet, error) {
	p, err := next()
	if err != nil {
		return p, p, err
	}
	p.Payload, p.Raw = bytes.Clone(p.Payload), bytes.Clone(p.Raw)
	q, err := next()
	return p, q, err
}

func TestPacketErrors(t *testing.T) {
	big, _ := AppendPacket(nil, 0, payloadOf(MaxChunk+10))
	badSeq := bytes.Clone(big)
	badSeq[4+MaxChunk+3] = 9
	cases := []struct {
		name  string
		input []byte
		limit int
		want  error
	}{
		{"clean end", nil, 0, io.EOF},
		{"torn header", []byte{5, 0}, 0, io.ErrUnexpectedEOF},
		{"torn body", []byte{5, 0, 0, 0, 1, 2}, 0, io.ErrUnexpectedEOF},
		{"over the limit", []byte{11, 0, 0, 0}, 10, ErrTooLarge},
		{"over the limit across frames", big, MaxChunk + 5, ErrTooLarge},
		{"continuation out of sequence", badSeq, 0, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewPacketReader(bufio.NewReader(bytes.NewReader(tc.input)), tc.limit).Next()
			if !errors.Is(err, tc.want) {
				t.Errorf("PacketReader: %v, want %v", err, tc.want)
			}
			_, err = ReadPacket(bytes.NewReader(tc.input), tc.limit)
			if !errors.Is(err, tc.want) {
				t.Errorf("ReadPacket: %v, want %v", err, tc.want)
			}
		})
	}
	var tl *TooLargeError
	_, err := ReadPacket(bytes.NewReader([]byte{11, 0, 0, 0}), 10)
	if !errors.As(err, &tl) || tl.Length != 11 || tl.Limit != 10 {
		t.Errorf("TooLargeError = %+v", tl)
	}
}

func TestReadPacketReadsNothingBeyond(t *testing.T) {
	wire, _ := AppendPacket(nil, 0, []byte("hello"))
	r := bytes.NewReader(append(wire, "rest"...))
	if _, err := ReadPacket(r, 0); err != nil {
		t.Fatal(err)
	}
	if r.Len() != 4 {
		t.Errorf("%d bytes left after the packet, want 4", r.Len())
	}
}

func TestWritePacket(t *testing.T) {
	var buf bytes.Buffer
	next, err := WritePacket(&buf, 255, []byte{1, 2})
	if err != nil || next != 0 {
		t.Fatalf("next %d, err %v", next, err)
	}
	if want := []byte{2, 0, 0, 255, 1, 2}; !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("wrote % x, want % x", buf.Bytes(), want)
	}
}
