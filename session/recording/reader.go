package recording

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

// Frame is one decoded frame. Exactly one of the typed fields is set,
// according to Type; Payload holds the bytes of a type this version does
// not know.
type Frame struct {
	Index    int64
	Type     FrameType
	Time     time.Time
	Command  *CommandRecord
	Decision *protocols.Decision
	Columns  []protocols.Column
	Row      []Value
	Result   *protocols.Result
	End      string
	Seal     *Seal
	Params   *ParamsRecord
	Reply    *ReplyRecord
	Exchange *ExchangeRecord
	Payload  []byte
}

// Reader streams a recording's frames and checks each against the chain as
// it goes. It trusts whole blocks only: a frame is returned once its block
// has passed its CRC and decompressed, and its chain link matched.
//
// Next returns io.EOF after a valid trailer and a *FormatError (wrapping
// ErrAltered or ErrUnfinished) at the first problem; a Reader is not safe
// for concurrent use.
type Reader struct {
	src    *bufio.Reader
	key    []byte
	hdr    Header
	h      hash.Hash // the chain
	link   uint32
	next   int64 // index of the next frame
	sealed int64 // frames covered by the last valid seal
	ts     time.Duration
	raw    []byte // current decompressed block
	pos    int
	comp   bytes.Buffer
	blocks int
	offset int64 // file offset of the next block
	boff   int64 // file offset of the current block
	last   FrameType
	done   bool // trailer seen
	err    error

	signed  bool // the header declares a key
	checked bool // seals are checked with the given key
	tstate  TrailerState

	// lazy is set by Verify, which only needs to know that frames are
	// well formed: rows are checked without being copied out, and one
	// Frame is reused.
	lazy    bool
	scratch Frame
	// stored is the last frame as stored (length prefix and body, without
	// its link), valid until the next block is read: Recompress copies
	// frames through unchanged.
	stored []byte
}

// NewReader reads and checks the header. key, when given and matching the
// header's key id, makes the reader check every seal's signature.
func NewReader(r io.Reader, key []byte) (*Reader, error) {
	rd := &Reader{src: bufio.NewReaderSize(r, 64<<10), key: key}
	if err := rd.readHeader(); err != nil {
		rd.err = err
		return rd, err
	}
	return rd, nil
}

// Header returns the session header.
func (r *Reader) Header() Header { return r.hdr }

// ReadHeader reads and checks only the header of the recording at path.
func ReadHeader(path string) (Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return Header{}, err
	}
	defer f.Close()
	r, err := NewReader(f, nil)
	if err != nil {
		return Header{}, err
	}
	return r.Header(), nil
}

// Sealed returns how many frames the last valid checkpoint or trailer covers.
func (r *Reader) Sealed() int64 { return r.sealed }

// Blocks returns how many blocks were read.
func (r *Reader) Blocks() int { return r.blocks }

// Offset returns how many bytes of the file were consumed.
func (r *Reader) Offset() int64 { return r.offset }

// Signed reports whether the header declares a signing key, and Checked
// whether seals are being verified with the key given to NewReader.
func (r *Reader) Signed() bool  { return r.signed }
func (r *Reader) Checked() bool { return r.checked }

// Trailer says whether a trailer was met, whether it carries a signature
// and whether it checked.
func (r *Reader) Trailer() TrailerState {
	t := r.tstate
	t.Valid = r.done
	return t
}

func (r *Reader) headerErr(kind error, format string, a ...any) error {
	return &FormatError{Kind: kind, Frame: -1, Reason: fmt.Sprintf(format, a...)}
}

func (r *Reader) readHeader() error {
	var fixed [len(magic) + 6]byte
	if n, err := io.ReadFull(r.src, fixed[:]); err != nil {
		if m := min(n, len(magic)); !bytes.Equal(fixed[:m], magic[:m]) {
			return r.headerErr(ErrAltered, "not an Airlock recording")
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return r.headerErr(ErrUnfinished, "file ends inside the header (%d bytes)", n)
		}
		return fmt.Errorf("read recording header: %w", err)
	}
	if !bytes.Equal(fixed[:len(magic)], magic[:]) {
		return r.headerErr(ErrAltered, "not an Airlock recording (bad magic)")
	}
	version := binary.LittleEndian.Uint16(fixed[8:])
	if version == 0 || version > FormatVersion {
		return r.headerErr(ErrAltered, "format version %d is not supported (this build reads 1 to %d)", version, FormatVersion)
	}
	n := binary.LittleEndian.Uint32(fixed[10:])
	if n > maxHeader {
		return r.headerErr(ErrAltered, "header length %d exceeds the %d byte limit", n, maxHeader)
	}
	// Read what is there, not what the length claims: a hostile length
	// costs no allocation beyond the bytes actually present.
	var buf bytes.Buffer
	buf.Write(fixed[:])
	if _, err := io.CopyN(&buf, r.src, int64(n)+4); err != nil {
		if err == io.EOF {
			return r.headerErr(ErrUnfinished, "file ends inside the header")
		}
		return fmt.Errorf("read recording header: %w", err)
	}
	all := buf.Bytes()
	body, sum := all[:len(all)-4], binary.LittleEndian.Uint32(all[len(all)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return r.headerErr(ErrAltered, "header checksum mismatch")
	}
	if err := json.Unmarshal(body[len(fixed):], &r.hdr); err != nil {
		return r.headerErr(ErrAltered, "header does not decode: %v", err)
	}
	r.hdr.Version = int(version)
	switch c := r.hdr.Compression; {
	case version == 1 && c != "":
		return r.headerErr(ErrAltered, "version 1 header names a compression (%q)", c)
	case version >= 2 && !c.known():
		return r.headerErr(ErrAltered, "unknown compression %q", c)
	}
	r.h, r.link = newChain(all), linkSeed(all)
	r.offset = int64(len(all))
	r.signed = r.hdr.KeyID != ""
	r.checked = r.signed && len(r.key) > 0 && KeyID(r.key) == r.hdr.KeyID
	return nil
}

func (r *Reader) fail(kind error, format string, a ...any) error {
	r.err = &FormatError{Kind: kind, Frame: r.next, Block: r.blocks, Offset: r.boff, Reason: fmt.Sprintf(format, a...)}
	return r.err
}

// Next returns the next frame.
func (r *Reader) Next() (*Frame, error) {
	if r.err != nil {
		return nil, r.err
	}
	for r.pos >= len(r.raw) {
		if r.blocks > 0 && !r.last.isSeal() {
			return nil, r.fail(ErrAltered, "block %d does not end with a checkpoint", r.blocks-1)
		}
		if r.done {
			if _, err := r.src.ReadByte(); err != io.EOF {
				if err != nil {
					r.err = fmt.Errorf("read recording: %w", err)
					return nil, r.err
				}
				r.boff = r.offset
				return nil, r.fail(ErrAltered, "data after the trailer")
			}
			r.err = io.EOF
			return nil, io.EOF
		}
		if err := r.readBlock(); err != nil {
			return nil, err
		}
	}
	if r.done {
		return nil, r.fail(ErrAltered, "frame after the trailer")
	}
	return r.frame()
}

// readBlock reads, checks and decompresses the next block.
func (r *Reader) readBlock() error {
	r.boff = r.offset
	var hdr [blockHdrSize]byte
	n, err := io.ReadFull(r.src, hdr[:])
	switch {
	case err == io.EOF:
		return r.fail(ErrUnfinished, "no trailer: the recording stops after %d frames (the writer stopped or the file was truncated)", r.next)
	case err == io.ErrUnexpectedEOF:
		return r.fail(ErrUnfinished, "file ends inside a block header (%d of %d bytes)", n, blockHdrSize)
	case err != nil:
		r.err = fmt.Errorf("read recording: %w", err)
		return r.err
	}
	clen := binary.LittleEndian.Uint32(hdr[0:])
	rlen := binary.LittleEndian.Uint32(hdr[4:])
	if clen == 0 && rlen == 0 && r.zeroTail() {
		return r.fail(ErrUnfinished, "zero-filled tail after %d frames (a write torn by a crash)", r.next)
	}
	if clen == 0 || clen > maxBlockComp || rlen == 0 || rlen > maxBlockRaw {
		return r.fail(ErrAltered, "block lengths out of range (compressed %d, raw %d)", clen, rlen)
	}
	r.comp.Reset()
	r.comp.Write(hdr[:])
	got, err := io.CopyN(&r.comp, r.src, int64(clen)+4)
	if err == io.EOF {
		return r.fail(ErrUnfinished, "file ends inside a block (%d of %d bytes)", got, int64(clen)+4)
	} else if err != nil {
		r.err = fmt.Errorf("read recording: %w", err)
		return r.err
	}
	all := r.comp.Bytes()
	body, sum := all[:len(all)-4], binary.LittleEndian.Uint32(all[len(all)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		if sum == 0 && r.atEOF() {
			return r.fail(ErrUnfinished, "last block is incomplete (a write torn by a crash)")
		}
		return r.fail(ErrAltered, "block checksum mismatch")
	}
	if cap(r.raw) < int(rlen) {
		r.raw = make([]byte, 0, rlen)
	}
	out, err := decodeBlock(r.hdr.codec(), r.raw[:0:rlen], body[blockHdrSize:], int(rlen))
	if err != nil {
		return r.fail(ErrAltered, "block does not decompress: %v", err)
	}
	if len(out) != int(rlen) {
		return r.fail(ErrAltered, "block decompresses to %d bytes, header says %d", len(out), rlen)
	}
	r.raw, r.pos = out, 0
	r.blocks++
	r.offset += int64(len(all))
	r.last = 0
	return nil
}

// zeroTail reports whether everything left in the file is zero bytes, the
// mark of a file whose size was extended before a crash lost its data.
func (r *Reader) zeroTail() bool {
	for {
		b, err := r.src.ReadByte()
		if err != nil {
			return err == io.EOF
		}
		if b != 0 {
			return false
		}
	}
}

func (r *Reader) atEOF() bool {
	_, err := r.src.Peek(1)
	return err == io.EOF
}

// frame decodes the frame at r.pos and checks its chain link.
func (r *Reader) frame() (*Frame, error) {
	p := r.raw[r.pos:]
	n, k := binary.Uvarint(p)
	if k <= 0 || n < 2 || n > maxFrameBody || n > uint64(len(p)-k) || uint64(len(p)-k)-n < tagSize {
		return nil, r.fail(ErrAltered, "bad frame length")
	}
	body := p[k : k+int(n)]
	if FrameType(body[0]) == FrameTrailer {
		// Noted before any check, so a report can say a trailer is there
		// even when it is the part that was altered.
		r.tstate.Present = true
		if _, k2 := binary.Uvarint(body[1:]); k2 > 0 {
			if s, err := decodeSeal(body[1+k2:]); err == nil {
				r.tstate.Signed = len(s.MAC) > 0
			}
		}
	}
	fr := p[:k+int(n)]
	link := crc32.Update(r.link, castagnoli, fr)
	if binary.LittleEndian.Uint32(p[k+int(n):]) != link {
		return nil, r.fail(ErrAltered, "frame checksum mismatch (this frame or one before it in this block was edited, dropped, inserted or reordered)")
	}
	t := FrameType(body[0])
	var prev [32]byte
	if t.isSeal() {
		prev = head(r.h)
	}
	r.h.Write(fr)
	r.link = link
	r.stored = fr
	r.pos += k + int(n) + tagSize
	dt, k2 := binary.Uvarint(body[1:])
	if k2 <= 0 || dt > uint64(1<<62) || r.ts+time.Duration(dt) < r.ts {
		return nil, r.fail(ErrAltered, "bad frame time")
	}
	r.ts += time.Duration(dt)
	f := &Frame{}
	if r.lazy {
		f = &r.scratch
	}
	*f = Frame{Index: r.next, Type: t, Time: r.hdr.Start.Add(r.ts)}
	if err := r.decode(f, body[1+k2:], prev); err != nil {
		if fe, ok := err.(*FormatError); ok {
			return nil, fe
		}
		return nil, r.fail(ErrAltered, "%s frame: %v", t, err)
	}
	r.next++
	r.last = t
	if t == FrameTrailer {
		r.done = true
	}
	if t.isSeal() {
		r.sealed = r.next
	}
	return f, nil
}

// decode fills f's typed field from its payload; prev is the chain head
// before a seal. Verify's lazy reader checks rows and replies without
// copying their values out.
func (r *Reader) decode(f *Frame, payload []byte, prev [32]byte) error {
	var err error
	switch f.Type {
	case FrameCommand:
		f.Command, err = decodeCommand(payload)
	case FrameDecision:
		f.Decision, err = decodeDecision(payload)
	case FrameColumns:
		f.Columns, err = decodeColumns(payload)
	case FrameRow:
		if r.lazy {
			err = checkRow(payload)
		} else {
			f.Row, err = decodeRow(payload)
		}
	case FrameResult:
		f.Result, err = decodeResult(payload)
	case FrameEnd:
		f.End, err = decodeEnd(payload)
	case FrameParams:
		f.Params, err = decodeParams(payload)
	case FrameReply:
		if r.lazy {
			err = checkReply(payload)
		} else {
			f.Reply, err = decodeReply(payload)
		}
	case FrameExchange:
		f.Exchange, err = decodeExchange(payload)
	case FrameCheckpoint, FrameTrailer:
		f.Seal, err = decodeSeal(payload)
		if err == nil {
			err = r.checkSeal(f.Type, f.Seal, prev)
		}
	default:
		f.Payload = append([]byte(nil), payload...)
	}
	return err
}

// checkSeal checks a checkpoint or trailer against the chain before it and,
// with the right key, its signature.
func (r *Reader) checkSeal(t FrameType, s *Seal, head [32]byte) error {
	switch {
	case s.Count != r.next:
		return r.fail(ErrAltered, "%s counts %d frames, %d precede it", t, s.Count, r.next)
	case s.Head != head:
		return r.fail(ErrAltered, "%s chain head does not match the frames before it (frames were edited and their checksums recomputed)", t)
	case r.signed && len(s.MAC) == 0:
		return r.fail(ErrAltered, "unsigned %s in a recording signed with key %s", t, r.hdr.KeyID)
	case !r.signed && len(s.MAC) != 0:
		return r.fail(ErrAltered, "signed %s in a recording that declares no key", t)
	case r.checked && !hmac.Equal(s.MAC, sealMAC(r.key, t, s.Count, s.Head)):
		return r.fail(ErrAltered, "%s signature is invalid (re-sealed without the key)", t)
	}
	return nil
}
