package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Framing is written by hand: go-mysql's packet.Conn wraps a net.Conn in its
// own bufio.Reader, copies every payload, has no bound on a payload's size
// and keeps no raw bytes, while the engine relays the original frames and
// must refuse an oversized payload before reading it.

// MaxChunk is the largest payload one packet carries; a payload of MaxChunk
// bytes or more continues in the following packets, the last one shorter
// than MaxChunk (possibly empty).
const MaxChunk = mysql.MaxPayloadLen

// ErrTooLarge is matched (errors.Is) by every TooLargeError.
var ErrTooLarge = errors.New("mysql payload too large")

// TooLargeError reports a payload longer than the reader's limit. Length is
// what had been declared when the limit was crossed: for a payload split
// across packets, the sum of the chunks seen so far.
type TooLargeError struct {
	Length int64
	Limit  int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("mysql payload of at least %d bytes exceeds the limit of %d", e.Length, e.Limit)
}

// Is makes errors.Is(err, ErrTooLarge) true.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// Packet is one logical packet: a payload and the frames that carried it.
type Packet struct {
	// Seq is the sequence id of the first frame.
	Seq uint8
	// Frames is the number of frames: 1 below MaxChunk bytes of payload.
	Frames int
	// Payload is the joined payload without headers.
	Payload []byte
	// Raw is every frame as read, headers included, for relaying unchanged.
	Raw []byte
}

// NextSeq is the sequence id that follows the packet's last frame.
func (p Packet) NextSeq() uint8 { return p.Seq + uint8(p.Frames) }

// Reader is what a PacketReader reads from: a *bufio.Reader, or the
// transport's reader. Peek(n) must return bufio.ErrBufferFull when n exceeds
// what the reader can hold, so that larger packets are read with Read.
type Reader interface {
	Peek(n int) ([]byte, error)
	Discard(n int) (int, error)
	Read(p []byte) (int, error)
}

// PacketReader reads packets from a buffered stream. Packets that fit the
// reader's window are returned without copying; larger ones are copied into
// a buffer the PacketReader keeps. Either way Payload and Raw are valid only
// until the next call to Next. After an error other than io.EOF the stream is
// no longer at a packet boundary and the connection must be closed.
type PacketReader struct {
	src     Reader
	max     int
	raw     []byte
	payload []byte
}

// NewPacketReader reads packets from src, refusing payloads longer than
// maxPayload bytes (0: no limit beyond the protocol's own).
func NewPacketReader(src Reader, maxPayload int) *PacketReader {
	return &PacketReader{src: src, max: maxPayload}
}

// Next returns the next packet. It returns io.EOF only when the stream ends
// cleanly between packets.
func (r *PacketReader) Next() (Packet, error) {
	// A buffer grown for one huge packet is dropped so an idle session does
	// not pin it; the previous packet's slices stay valid for the GC.
	if cap(r.raw) > 1<<20 {
		r.raw, r.payload = nil, nil
	}
	hdr, err := r.src.Peek(4)
	if err != nil {
		if len(hdr) > 0 && errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Packet{}, err
	}
	n := chunkLength(hdr)
	if err := checkLimit(int64(n), r.max); err != nil {
		return Packet{}, err
	}
	if n < MaxChunk {
		frame, err := r.src.Peek(4 + n)
		if err == nil {
			// The peeked bytes stay valid until the next read refills the buffer.
			_, _ = r.src.Discard(4 + n)
			return Packet{Seq: hdr[3], Frames: 1, Payload: frame[4:], Raw: frame}, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return Packet{}, unexpectedEOF(err)
		}
	}
	p, raw, payload, err := readFrames(r.src, r.max, r.raw[:0], r.payload[:0])
	r.raw, r.payload = raw, payload
	return p, err
}

// ReadPacket reads one packet from r with exact reads: nothing beyond the
// packet is consumed, which the connection phase needs because the stream
// changes hands (to TLS, or from Dial to the engine) between packets.
func ReadPacket(r io.Reader, maxPayload int) (Packet, error) {
	p, _, _, err := readFrames(r, maxPayload, nil, nil)
	return p, err
}

// readFrames reads the frames of one packet into raw, joining payloads of
// more than one frame into payload.
func readFrames(r io.Reader, limit int, raw, payload []byte) (Packet, []byte, []byte, error) {
	var p Packet
	var total int64
	for {
		start := len(raw)
		raw = append(raw, 0, 0, 0, 0)
		if _, err := io.ReadFull(r, raw[start:]); err != nil {
			if p.Frames > 0 || !errors.Is(err, io.EOF) {
				err = unexpectedEOF(err)
			}
			return Packet{}, raw, payload, err
		}
		hdr := raw[start:]
		n, seq := chunkLength(hdr), hdr[3]
		if p.Frames == 0 {
			p.Seq = seq
		} else if seq != p.Seq+uint8(p.Frames) {
			return Packet{}, raw, payload, fmt.Errorf("%w: frame %d of a packet has sequence id %d, want %d",
				ErrMalformed, p.Frames+1, seq, p.Seq+uint8(p.Frames))
		}
		total += int64(n)
		if err := checkLimit(total, limit); err != nil {
			return Packet{}, raw, payload, err
		}
		raw = slices.Grow(raw, n)[:len(raw)+n]
		if _, err := io.ReadFull(r, raw[start+4:]); err != nil {
			return Packet{}, raw, payload, unexpectedEOF(err)
		}
		p.Frames++
		if n < MaxChunk {
			break
		}
	}
	p.Raw = raw
	if p.Frames == 1 {
		p.Payload = raw[4:]
		return p, raw, payload, nil
	}
	for off := 0; off < len(raw); {
		n := chunkLength(raw[off:])
		payload = append(payload, raw[off+4:off+4+n]...)
		off += 4 + n
	}
	p.Payload = payload
	return p, raw, payload, nil
}

func chunkLength(hdr []byte) int { return int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16 }

func checkLimit(n int64, limit int) error {
	if limit > 0 && n > int64(limit) {
		return &TooLargeError{Length: n, Limit: limit}
	}
	return nil
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// AppendPacket appends payload to dst as packets starting at sequence id
// seq, split at MaxChunk, and returns the sequence id that follows.
func AppendPacket(dst []byte, seq uint8, payload []byte) ([]byte, uint8) {
	for {
		n := min(len(payload), MaxChunk)
		dst = append(dst, byte(n), byte(n>>8), byte(n>>16), seq)
		dst = append(dst, payload[:n]...)
		payload = payload[n:]
		seq++
		if n < MaxChunk {
			return dst, seq
		}
	}
}

// WritePacket writes payload to w as packets starting at sequence id seq and
// returns the sequence id that follows.
func WritePacket(w io.Writer, seq uint8, payload []byte) (uint8, error) {
	buf, next := AppendPacket(make([]byte, 0, len(payload)+4*(len(payload)/MaxChunk+1)), seq, payload)
	_, err := w.Write(buf)
	return next, err
}
