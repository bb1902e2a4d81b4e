package recording

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/crc32"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

// FormatVersion is the newest version of the recording format this package
// reads. It writes PostgreSQL sessions as version 1 when they are zstd, so
// that every reader of version 1 reads them, and as version 2 for the other
// codecs; sessions of every other protocol are version 3, which adds the
// reply and exchange frames and native type ids of the header's protocol.
// FORMAT.md describes all three.
const FormatVersion = 3

// Compression names the codec a recording's blocks are compressed with.
type Compression string

// Codecs, both from github.com/klauspost/compress.
const (
	// CompressZstd makes the smallest files: for recordings kept long,
	// rewritten by Recompress once their sessions have ended.
	CompressZstd Compression = "zstd"
	// CompressS2 (the default) compresses about three times faster, into
	// files 1.3 to 1.8 times as large, depending on the data
	// (BenchmarkRecorderMix, BenchmarkCodec): recording runs on the
	// session's path, where the gateway's CPU is dearer than disk.
	CompressS2 Compression = "s2"
)

// known reports whether c names a codec this build reads and writes.
func (c Compression) known() bool { return c == CompressZstd || c == CompressS2 }

// FileExt is the extension of recording files.
const FileExt = ".alrec"

// magic starts every recording. Like PNG's signature, the high byte and the
// CR LF pair reveal 7-bit or line-ending mangling in transit.
var magic = [8]byte{0x89, 'A', 'L', 'R', 'E', 'C', '\r', '\n'}

// Limits that bound what a writer produces and what a reader accepts, so a
// hostile length field can never make a reader allocate more than this.
const (
	maxHeader    = 1 << 20 // header JSON
	maxFrameBody = 1 << 20 // one frame's type, time and payload
	maxText      = 512 << 10
	maxValue     = 64 << 10
	maxName      = 256     // a command's kind, a tool, a method, a reply's kind
	maxPath      = 8 << 10 // a command's or an exchange's path
	// maxBlockRaw bounds a decompressed block: the largest configurable
	// block size, one maximal frame past it and the closing frames.
	maxBlockRaw  = MaxBlockSize + maxFrameBody + 64<<10
	maxBlockComp = maxBlockRaw + maxBlockRaw/64 + 1024
	tagSize      = 4 // the CRC-32C link stored after each frame
	blockHdrSize = 8 // compressed length, raw length
)

// FrameType says what a frame records.
type FrameType uint8

// Frame types. Values are part of the file format and never reused.
const (
	FrameCommand    FrameType = 1
	FrameDecision   FrameType = 2
	FrameColumns    FrameType = 3
	FrameRow        FrameType = 4
	FrameResult     FrameType = 5
	FrameEnd        FrameType = 6
	FrameCheckpoint FrameType = 7
	FrameTrailer    FrameType = 8
	FrameParams     FrameType = 9
	FrameReply      FrameType = 10
	FrameExchange   FrameType = 11
	frameTypeLimit            = 12
)

var frameNames = [...]string{"", "command", "decision", "columns", "row", "result", "end", "checkpoint", "trailer", "params", "reply", "exchange"}

// String returns the frame type's name as used in JSON and metric labels.
func (t FrameType) String() string {
	if int(t) < len(frameNames) && frameNames[t] != "" {
		return frameNames[t]
	}
	return fmt.Sprintf("unknown(%d)", uint8(t))
}

// MarshalText implements encoding.TextMarshaler.
func (t FrameType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

func (t FrameType) isSeal() bool { return t == FrameCheckpoint || t == FrameTrailer }

// Header describes the recorded session. It is written once, uncompressed,
// at the start of the file, so a file can be identified and listed without
// decompressing anything.
type Header struct {
	// Version is the format version read from the file (not part of the JSON).
	Version        int                `json:"-"`
	SessionID      string             `json:"session_id"`
	Identity       protocols.Identity `json:"identity"`
	Connection     string             `json:"connection"`
	Protocol       protocols.Protocol `json:"protocol"`
	ClientAddr     string             `json:"client_addr"`
	AirlockVersion string             `json:"airlock_version"`
	Node           string             `json:"node,omitempty"`
	Start          time.Time          `json:"start"`
	Rows           RowsMode           `json:"rows"`
	FirstRows      int                `json:"first_rows,omitempty"`
	// KeyID identifies the HMAC key that signs the checkpoints and the
	// trailer; empty when the recording is unsigned. It is derived from the
	// key one-way and reveals nothing about it.
	KeyID string `json:"key_id,omitempty"`
	// Compression is the blocks' codec. Empty in version 1 files, which are
	// all zstd; version 2 and 3 files name it.
	Compression Compression `json:"compression,omitempty"`
}

// pgTypes reports whether the recording's native type ids are PostgreSQL
// type OIDs, which a replay may decode with pgx: in a PostgreSQL session,
// or in a version 1 or 2 file that names no protocol, since those versions
// define the ids as OIDs.
func (h *Header) pgTypes() bool {
	return h.Protocol == protocols.Postgres || (h.Protocol == "" && h.Version < 3)
}

// codec returns the header's block codec: zstd when the header does not
// name one (version 1).
func (h *Header) codec() Compression {
	if h.Compression == "" {
		return CompressZstd
	}
	return h.Compression
}

// formatVersion is the version a writer stores for h. A PostgreSQL
// session is version 1 when zstd, whose files need no compression key, and
// 2 for any other codec, so that a reader of version 1 refuses the file
// instead of calling its blocks altered. Every other protocol is version 3:
// its results are reply or exchange frames, which a reader of version 1 or
// 2 would skip as unknown and then call the transcript intact, and its
// native type ids are not the OIDs those readers would decode them as.
func (h *Header) formatVersion() uint16 {
	switch {
	case h.Protocol != protocols.Postgres:
		return 3
	case h.codec() == CompressZstd:
		return 1
	}
	return 2
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeHeader returns the header's bytes as stored: magic, version, length,
// JSON, CRC-32C of everything before it. A version 1 header is stored
// without its compression key; later versions always name the codec.
func encodeHeader(h *Header) ([]byte, error) {
	version := h.formatVersion()
	stored := h.codec()
	if version == 1 {
		stored = ""
	}
	if h.Compression != stored {
		c := *h
		c.Compression = stored
		h = &c
	}
	const prefix = len(magic) + 6
	b := make([]byte, prefix, 512)
	copy(b, magic[:])
	binary.LittleEndian.PutUint16(b[len(magic):], version)
	b, err := appendHeaderJSON(b, h)
	if err != nil {
		return nil, fmt.Errorf("encode header: %w", err)
	}
	if n := len(b) - prefix; n > maxHeader {
		return nil, fmt.Errorf("encode header: %d bytes exceeds the %d byte limit", n, maxHeader)
	}
	binary.LittleEndian.PutUint32(b[len(magic)+2:], uint32(len(b)-prefix))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

// newChain starts a recording's hash chain: a SHA-256 state that absorbs a
// domain label and the stored header, then every frame (its length prefix
// and body) in order. Its digest at a seal is the chain head: SHA-256 is
// itself a chain over 64-byte blocks, so each frame extends it at the cost
// of hashing its bytes once, without a finalisation per frame.
func newChain(header []byte) hash.Hash {
	h := sha256.New()
	h.Write([]byte("airlock recording v1\x00"))
	h.Write(header)
	return h
}

// head returns the chain head: the digest of everything absorbed so far.
// The state continues.
func head(h hash.Hash) [32]byte {
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// linkSeed is the first frame's link input: the header's CRC, so the links
// are bound to the header too.
func linkSeed(header []byte) uint32 {
	return binary.LittleEndian.Uint32(header[len(header)-4:])
}

// Domain separation for seals: a checkpoint's signature can never be passed
// off as a trailer's, so a truncated file cannot be re-sealed by turning its
// last checkpoint into a trailer.
const (
	sealCheckpoint = "airlock recording checkpoint v1\x00"
	sealTrailer    = "airlock recording trailer v1\x00"
)

func sealMAC(key []byte, t FrameType, count int64, head [32]byte) []byte {
	return sumSealMAC(hmac.New(sha256.New, key), t, count, head)
}

// sumSealMAC is sealMAC with m, an HMAC-SHA256 of the key in its
// initial state.
func sumSealMAC(m hash.Hash, t FrameType, count int64, head [32]byte) []byte {
	if t == FrameTrailer {
		m.Write([]byte(sealTrailer))
	} else {
		m.Write([]byte(sealCheckpoint))
	}
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(count))
	m.Write(n[:])
	m.Write(head[:])
	return m.Sum(nil)
}

// KeyID returns the public identifier of an HMAC key as stored in a signed
// recording's header: 16 hex digits of an HMAC of a fixed label, so it
// reveals nothing about the key yet tells keys apart.
func KeyID(key []byte) string {
	if len(key) == 0 {
		return ""
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("airlock recording key id"))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// RowsMode says which result rows a recording keeps.
type RowsMode string

// Row recording modes.
const (
	RowsNone  RowsMode = "none"  // columns and summaries only
	RowsFirst RowsMode = "first" // the first N rows of each result set
	RowsAll   RowsMode = "all"   // every row
)
