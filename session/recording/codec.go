package recording

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// A block's codec appends the compressed form of a raw block to dst. Both
// come from github.com/klauspost/compress and are safe for concurrent use,
// so one serves every session of a factory.
type blockEncoder func(dst, raw []byte) []byte

// newBlockEncoder returns c's encoder.
func newBlockEncoder(c Compression) (blockEncoder, error) {
	switch c {
	case CompressZstd, "":
		// One encoder for every session: EncodeAll keeps at most
		// GOMAXPROCS internal states, whatever the number of sessions.
		// Fastest keeps recording cheap on the row path; rows are
		// repetitive and still compress several-fold.
		enc, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithEncoderCRC(false), // blocks carry their own CRC-32C
		)
		if err != nil {
			return nil, fmt.Errorf("create zstd encoder: %w", err)
		}
		return func(dst, raw []byte) []byte { return enc.EncodeAll(raw, dst) }, nil
	case CompressS2:
		return appendS2, nil
	}
	return nil, fmt.Errorf("unknown compression %q", c)
}

// appendS2 appends raw as one S2 block (not the framed stream format: the
// recording's own block header carries the lengths and the CRC).
func appendS2(dst, raw []byte) []byte {
	n := s2.MaxEncodedLen(len(raw)) // raw is at most maxBlockRaw, far below S2's limit
	dst = slices.Grow(dst, n)
	out := s2.Encode(dst[len(dst):len(dst)+n], raw)
	return dst[:len(dst)+len(out)]
}

// zstdDecoder is shared by all readers: DecodeAll is safe for concurrent
// use, and the caps bound what one hostile block can make it allocate.
var zstdDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderMaxMemory(maxBlockRaw),
		zstd.WithDecodeAllCapLimit(true),
	)
})

// errBlockLength says a block decompressed to another length than its
// header's.
var errBlockLength = errors.New("decompressed length differs from the block header's")

// decodeBlock decompresses src, compressed with c, into dst[:0], which has
// room for exactly rlen bytes. Nothing is allocated beyond dst: an S2 block
// states its length first, and zstd's DecodeAll is capped at dst's capacity.
func decodeBlock(c Compression, dst, src []byte, rlen int) ([]byte, error) {
	switch c {
	case CompressS2:
		n, err := s2.DecodedLen(src)
		if err != nil {
			return nil, err
		}
		if n != rlen {
			return nil, fmt.Errorf("%w (%d, header %d)", errBlockLength, n, rlen)
		}
		return s2.Decode(dst[:rlen], src)
	default:
		dec, err := zstdDecoder()
		if err != nil {
			return nil, fmt.Errorf("zstd decoder: %w", err)
		}
		return dec.DecodeAll(src, dst[:0:rlen])
	}
}
