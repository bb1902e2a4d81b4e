package recording

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"os"
	"testing"
)

// rawFile is a recording taken apart the way an editor with this package's
// source (but perhaps without the key) would: header bytes, and per block
// the frames' bodies and stored chain links.
type rawFile struct {
	header []byte
	codec  Compression
	blocks [][]rawFrame
}

type rawFrame struct {
	body []byte // type, time delta, payload
	tag  []byte
}

func (f rawFrame) typ() FrameType { return FrameType(f.body[0]) }

func parseRaw(t testing.TB, b []byte) *rawFile {
	t.Helper()
	hlen := int(binary.LittleEndian.Uint32(b[10:]))
	end := len(magic) + 6 + hlen + 4
	rf := &rawFile{header: append([]byte(nil), b[:end]...)}
	var h Header
	must(t, json.Unmarshal(b[len(magic)+6:end-4], &h))
	rf.codec = h.codec()
	for p := b[end:]; len(p) > 0; {
		clen := int(binary.LittleEndian.Uint32(p))
		rlen := int(binary.LittleEndian.Uint32(p[4:]))
		raw, err := decodeBlock(rf.codec, make([]byte, 0, rlen), p[blockHdrSize:blockHdrSize+clen], rlen)
		must(t, err)
		var frames []rawFrame
		for q := raw; len(q) > 0; {
			n, k := binary.Uvarint(q)
			frames = append(frames, rawFrame{
				body: append([]byte(nil), q[k:k+int(n)]...),
				tag:  append([]byte(nil), q[k+int(n):k+int(n)+tagSize]...),
			})
			q = q[k+int(n)+tagSize:]
		}
		rf.blocks = append(rf.blocks, frames)
		p = p[blockHdrSize+clen+4:]
	}
	return rf
}

func readRaw(t testing.TB, path string) *rawFile {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	return parseRaw(t, b)
}

// bytes re-encodes the file with valid block CRCs and the frames' links as
// they are (not recomputed).
func (rf *rawFile) bytes(t testing.TB) []byte {
	t.Helper()
	out := append([]byte(nil), rf.header...)
	for _, blk := range rf.blocks {
		var raw []byte
		for _, fr := range blk {
			raw = binary.AppendUvarint(raw, uint64(len(fr.body)))
			raw = append(raw, fr.body...)
			raw = append(raw, fr.tag...)
		}
		c := make([]byte, blockHdrSize)
		c = encoderForTests(t, rf.codec)(c, raw)
		binary.LittleEndian.PutUint32(c[0:], uint32(len(c)-blockHdrSize))
		binary.LittleEndian.PutUint32(c[4:], uint32(len(raw)))
		c = binary.LittleEndian.AppendUint32(c, crc32.Checksum(c, castagnoli))
		out = append(out, c...)
	}
	return out
}

// editHeader decodes the header JSON, lets edit change it and re-encodes it
// with a fresh CRC.
func (rf *rawFile) editHeader(t testing.TB, edit func(h *Header)) {
	t.Helper()
	hlen := int(binary.LittleEndian.Uint32(rf.header[10:]))
	var h Header
	must(t, json.Unmarshal(rf.header[len(magic)+6:len(magic)+6+hlen], &h))
	edit(&h)
	b, err := encodeHeader(&h)
	must(t, err)
	rf.header = b
}

// rechain recomputes every link and seal over the current frames, signing
// seals with key (nil: unsigned): a complete re-seal. Seals in blocks before
// from keep their payloads, as a careful editor would leave what they did
// not touch; from past the last block recomputes the links only.
func (rf *rawFile) rechain(key []byte, from int) {
	h, link := newChain(rf.header), linkSeed(rf.header)
	var n int64
	for b, blk := range rf.blocks {
		for i := range blk {
			fr := &blk[i]
			if t := fr.typ(); t.isSeal() && b >= from {
				_, k := binary.Uvarint(fr.body[1:])
				hd := head(h)
				var mac []byte
				if key != nil {
					mac = sealMAC(key, t, n, hd)
				}
				fr.body = appendSeal(fr.body[:1+k:1+k], n, &hd, mac)
			}
			enc := binary.AppendUvarint(nil, uint64(len(fr.body)))
			enc = append(enc, fr.body...)
			h.Write(enc)
			link = crc32.Update(link, castagnoli, enc)
			fr.tag = binary.LittleEndian.AppendUint32(nil, link)
			n++
		}
	}
}

// frameIndex returns the file-wide index of frame i of block b.
func (rf *rawFile) frameIndex(b, i int) int64 {
	var n int64
	for _, blk := range rf.blocks[:b] {
		n += int64(len(blk))
	}
	return n + int64(i)
}

// blockOffsets returns each block's byte offset in the encoded file.
func blockOffsets(t testing.TB, b []byte) []int {
	t.Helper()
	hlen := int(binary.LittleEndian.Uint32(b[10:]))
	var offs []int
	for p := len(magic) + 6 + hlen + 4; p < len(b); {
		offs = append(offs, p)
		p += blockHdrSize + int(binary.LittleEndian.Uint32(b[p:])) + 4
	}
	return offs
}

func verifyBytes(t testing.TB, b []byte, key []byte) Report {
	t.Helper()
	rep, err := Verify(bytes.NewReader(b), key)
	must(t, err)
	return rep
}

func encoderForTests(t testing.TB, c Compression) blockEncoder {
	t.Helper()
	enc, err := newBlockEncoder(c)
	must(t, err)
	return enc
}
