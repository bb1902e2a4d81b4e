package recording

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/airlock-gw/airlock/protocols"
)

// Recompression rewrites a finished recording with another block codec:
// sessions record with s2, which costs the gateway least, and recordings
// kept for long are rewritten with zstd, which makes files 1.3 to 1.8
// times smaller.
//
// The frames are copied through byte for byte, so a replay reads the same
// transcript, but the chain cannot be kept: it starts with the header as
// stored, which names the codec (and whose version depends on it), and the
// links start from the header's CRC. Recompress therefore checks the whole
// recording first, as Verify would, and re-chains and re-seals the copy:
// with the key for a signed recording, which it refuses without that key.
// The copy proves what the original proved, no more: whoever holds the key
// can write a recording that verifies, recompressed or not.

// ErrNeedsKey says a signed recording cannot be re-sealed without its key.
var ErrNeedsKey = errors.New("recording is signed: recompressing re-seals it, which needs its key")

// ErrNotIntact says a recording is unfinished or altered: only intact
// recordings are recompressed.
var ErrNotIntact = errors.New("recording is not intact")

// Recompressed says what Recompress did to one file.
type Recompressed struct {
	Path string
	// From and To are the codecs before and after; equal when the file
	// was left alone because it already had the codec asked for.
	From, To Compression
	// Before and After are the file's sizes.
	Before, After int64
	Frames        int64
	// Resealed says the seals were signed again with the key.
	Resealed bool
}

// Skipped reports whether the file already had the codec asked for.
func (r Recompressed) Skipped() bool { return r.From == r.To }

// Recompress rewrites the finished recording at path with codec to. It
// reads and checks every frame, writes the copy to a temporary file in the
// same directory, syncs it, verifies it and renames it over path, so a
// crash leaves either file whole (and at most a temporary file, whose name
// starts with a dot). A recording that is not intact is refused
// (ErrNotIntact), as is a signed one without its key (ErrNeedsKey), and
// one that changes while it is rewritten. Whether the session has ended
// is the caller's to check, with the session index: an intact file has its
// trailer, but its writer may not have closed it yet.
func Recompress(path string, to Compression, key []byte) (Recompressed, error) {
	res := Recompressed{Path: path, To: to}
	enc, err := newBlockEncoder(to)
	if err != nil {
		return res, err
	}
	src, err := os.Open(path)
	if err != nil {
		return res, fmt.Errorf("open recording: %w", err)
	}
	defer src.Close()
	before, err := src.Stat()
	if err != nil {
		return res, fmt.Errorf("open recording: %w", err)
	}
	res.Before = before.Size()
	rd, err := NewReader(src, key)
	if err != nil {
		return res, fmt.Errorf("%w: %v", ErrNotIntact, err)
	}
	h := rd.Header()
	res.From = h.codec()
	if res.From == to {
		res.After = res.Before
		return res, nil
	}
	if rd.Signed() && !rd.Checked() {
		if len(key) > 0 {
			return res, fmt.Errorf("%w (signed with key %s, not the given key %s)", ErrNeedsKey, h.KeyID, KeyID(key))
		}
		return res, fmt.Errorf("%w (key %s)", ErrNeedsKey, h.KeyID)
	}
	if h.Protocol == "" && h.Version < 3 {
		// Versions 1 and 2 define native type ids as PostgreSQL's; the
		// copy's version follows from its protocol and codec.
		h.Protocol = protocols.Postgres
	}
	h.Compression = to
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".recompress-*")
	if err != nil {
		return res, fmt.Errorf("create temporary file: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	rc := &rechainer{out: tmp, encode: enc}
	if rd.Checked() {
		rc.key = key
	}
	if err := rc.copy(rd, &h); err != nil {
		return res, err
	}
	res.Frames, res.Resealed = rc.frames, rc.key != nil
	if err := finish(tmp, path, before, rc.key); err != nil {
		return res, err
	}
	keep = true
	res.After = rc.bytes
	return res, nil
}

// finish makes the copy durable, verifies it, checks that the original
// did not change meanwhile and renames the copy over it.
func finish(tmp *os.File, path string, before os.FileInfo, key []byte) error {
	if err := tmp.Chmod(before.Mode().Perm()); err != nil {
		return fmt.Errorf("recompress: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("recompress: sync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("recompress: %w", err)
	}
	rep, err := VerifyFile(tmp.Name(), key)
	if err != nil {
		return fmt.Errorf("recompress: verify the copy: %w", err)
	}
	if rep.Status != Intact {
		return fmt.Errorf("recompress: the copy does not verify: %s", rep)
	}
	now, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("recompress: %w", err)
	}
	if !os.SameFile(now, before) || now.Size() != before.Size() || !now.ModTime().Equal(before.ModTime()) {
		return fmt.Errorf("recompress: %s changed while it was rewritten", path)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("recompress: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("recompress: sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("recompress: sync directory: %w", err)
	}
	return nil
}

// rechainer writes a copy of a recording's frames under a new header: the
// frames as stored, with new links, and seals over the new chain. Blocks
// end where the original's did.
type rechainer struct {
	out    io.Writer
	encode blockEncoder
	key    []byte
	chain  hash.Hash
	link   uint32
	raw    []byte
	comp   []byte
	frames int64
	bytes  int64
}

// copy writes h and every frame rd returns; rd checks each as it goes, so
// a copy is only completed from an intact original.
func (c *rechainer) copy(rd *Reader, h *Header) error {
	hb, err := encodeHeader(h)
	if err != nil {
		return err
	}
	if err := c.write(hb); err != nil {
		return err
	}
	c.chain, c.link = newChain(hb), linkSeed(hb)
	for {
		f, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrNotIntact, err)
		}
		fr := rd.stored
		if f.Type.isSeal() {
			fr = c.seal(fr, f.Type)
		}
		c.raw = append(c.raw, fr...)
		c.chain.Write(fr)
		c.link = crc32.Update(c.link, castagnoli, fr)
		c.raw = binary.LittleEndian.AppendUint32(c.raw, c.link)
		c.frames++
		if rd.pos >= len(rd.raw) {
			if err := c.flush(); err != nil {
				return err
			}
		}
	}
	if len(c.raw) > 0 {
		return fmt.Errorf("%w: the last block does not end with its trailer", ErrNotIntact)
	}
	return nil
}

// seal returns the seal frame stored as fr rebuilt over the new chain: the
// same type and time, this copy's head and, with the key, signature.
func (c *rechainer) seal(fr []byte, t FrameType) []byte {
	_, k := binary.Uvarint(fr) // checked by the reader
	body := fr[k:]
	_, k2 := binary.Uvarint(body[1:])
	hd := head(c.chain)
	var mac []byte
	if c.key != nil {
		mac = sealMAC(c.key, t, c.frames, hd)
	}
	nb := append([]byte(nil), body[:1+k2]...)
	nb = appendSeal(nb, c.frames, &hd, mac)
	out := binary.AppendUvarint(nil, uint64(len(nb)))
	return append(out, nb...)
}

// flush compresses and writes the pending block.
func (c *rechainer) flush() error {
	b := append(c.comp[:0], make([]byte, blockHdrSize)...)
	b = c.encode(b, c.raw)
	binary.LittleEndian.PutUint32(b[0:], uint32(len(b)-blockHdrSize))
	binary.LittleEndian.PutUint32(b[4:], uint32(len(c.raw)))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	c.comp, c.raw = b, c.raw[:0]
	return c.write(b)
}

func (c *rechainer) write(b []byte) error {
	if _, err := c.out.Write(b); err != nil {
		return fmt.Errorf("recompress: write: %w", err)
	}
	c.bytes += int64(len(b))
	return nil
}
