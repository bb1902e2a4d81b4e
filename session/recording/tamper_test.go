package recording

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
)

// codecs are the block codecs every tamper test runs with.
var codecs = []Compression{CompressZstd, CompressS2}

// signedFixture records a signed session spread over several small blocks,
// compressed with codec, and returns the file's bytes.
func signedFixture(t testing.TB, codec Compression) []byte {
	t.Helper()
	f := newFactory(t, Config{Rows: RowsAll, BlockSize: MinBlockSize, Compression: codec}, Options{Key: testKey})
	rec := open(t, f, "fixture")
	sampleSession(t, rec)
	must(t, rec.Command(&protocols.Command{Kind: "query"}, "SELECT n, md5(n::text) FROM generate_series(1, 400) n"))
	must(t, rec.Decision(protocols.Decision{Action: protocols.Allow}))
	must(t, rec.Columns([]protocols.Column{{Name: "n", Type: protocols.TypeNumber}, {Name: "md5"}}))
	for i := range 400 {
		must(t, rec.Row([][]byte{fmt.Appendf(nil, "%d", i), fmt.Appendf(nil, "%032x", i*7919)}))
	}
	must(t, rec.Result(protocols.Result{Tag: "SELECT 400", Rows: 400}))
	must(t, rec.Close("client closed"))
	b, err := os.ReadFile(recordingPath(t, f, "fixture"))
	must(t, err)
	if rep := verifyBytes(t, b, testKey); !rep.OK() || rep.Blocks < 4 {
		t.Fatalf("fixture: %v, %d blocks", rep, rep.Blocks)
	}
	return b
}

func TestTamperIsDetected(t *testing.T) {
	for _, c := range codecs {
		t.Run(string(c), func(t *testing.T) { tamperIsDetected(t, c) })
	}
}

func tamperIsDetected(t *testing.T, codec Compression) {
	orig := signedFixture(t, codec)
	offs := blockOffsets(t, orig)
	total := verifyBytes(t, orig, testKey).Frames

	type want struct {
		status   Status
		badFrame int64 // -2: do not check
		problem  string
	}
	for _, tc := range []struct {
		name   string
		key    []byte
		tamper func(t *testing.T, b []byte) []byte
		want   want
	}{
		{"flip a byte in a compressed block", testKey, func(t *testing.T, b []byte) []byte {
			b[offs[2]+blockHdrSize+10] ^= 0x40
			return b
		}, want{Altered, -3, "block checksum mismatch"}},
		{"flip a byte in the header", testKey, func(t *testing.T, b []byte) []byte {
			i := bytes.Index(b, []byte("alice"))
			b[i] = 'A'
			return b
		}, want{Altered, -1, "header checksum mismatch"}},
		{"header edited and its checksum fixed", testKey, func(t *testing.T, b []byte) []byte {
			rf := parseRaw(t, b)
			rf.editHeader(t, func(h *Header) { h.Identity.Name = "mallory" })
			return rf.bytes(t)
		}, want{Altered, 0, "frame checksum mismatch"}},
		{"header names the other codec and its checksum is fixed", testKey, func(t *testing.T, b []byte) []byte {
			rf := parseRaw(t, b)
			other := CompressS2
			if codec == CompressS2 {
				other = CompressZstd
			}
			rf.editHeader(t, func(h *Header) { h.Compression = other })
			return append(rf.header, b[offs[0]:]...)
		}, want{Altered, 0, "block does not decompress"}},
		{"drop a frame", testKey, func(t *testing.T, b []byte) []byte {
			rf := parseRaw(t, b)
			rf.blocks[1] = append(rf.blocks[1][:3], rf.blocks[1][4:]...)
			return rf.bytes(t)
		}, want{Altered, -4, "frame checksum mismatch"}},
		{"swap two frames", testKey, func(t *testing.T, b []byte) []byte {
			rf := parseRaw(t, b)
			blk := rf.blocks[1]
			blk[2], blk[3] = blk[3], blk[2]
			return rf.bytes(t)
		}, want{Altered, -5, "frame checksum mismatch"}},
		{"swap two blocks", testKey, func(t *testing.T, b []byte) []byte {
			var out []byte
			out = append(out, b[:offs[1]]...)
			out = append(out, b[offs[2]:offs[3]]...)
			out = append(out, b[offs[1]:offs[2]]...)
			return append(out, b[offs[3]:]...)
		}, want{Altered, -6, "frame checksum mismatch"}},
		{"drop a whole block", testKey, func(t *testing.T, b []byte) []byte {
			return append(b[:offs[1]:offs[1]], b[offs[2]:]...)
		}, want{Altered, -6, "frame checksum mismatch"}},
		{"edit a row and fix the frame checksums", testKey, func(t *testing.T, b []byte) []byte {
			rf := parseRaw(t, b)
			editRow(t, rf)
			rechainLinksOnly(rf)
			return rf.bytes(t)
		}, want{Altered, -7, "checkpoint chain head does not match"}},
		{"edit a row and re-seal without the key", testKey, func(t *testing.T, b []byte) []byte {
			rf := parseRaw(t, b)
			editRow(t, rf)
			rf.rechain(nil, 1)
			// Keep the header's key id: the seals are now unsigned.
			return rf.bytes(t)
		}, want{Altered, -7, "unsigned checkpoint in a recording signed with key"}},
		{"edit a row and re-seal with a guessed key", testKey, func(t *testing.T, b []byte) []byte {
			rf := parseRaw(t, b)
			editRow(t, rf)
			rf.rechain([]byte("guessed-key-guessed-key-guessed-key!"), 1)
			return rf.bytes(t)
		}, want{Altered, -7, "checkpoint signature is invalid"}},
		{"edit a row, strip the key id and re-seal unsigned", testKey, func(t *testing.T, b []byte) []byte {
			rf := parseRaw(t, b)
			editRow(t, rf)
			rf.editHeader(t, func(h *Header) { h.KeyID = "" })
			rf.rechain(nil, 0)
			return rf.bytes(t)
		}, want{Unverified, -1, "the recording is not signed"}},
		{"edit a row and re-seal with the attacker's own key", testKey, func(t *testing.T, b []byte) []byte {
			rf := parseRaw(t, b)
			editRow(t, rf)
			other := []byte("attacker-key-attacker-key-attacker")
			rf.editHeader(t, func(h *Header) { h.KeyID = KeyID(other) })
			rf.rechain(other, 0)
			return rf.bytes(t)
		}, want{Unverified, -1, "not with the given key"}},
		{"alter the trailer's count", testKey, func(t *testing.T, b []byte) []byte {
			rf := parseRaw(t, b)
			last := rf.blocks[len(rf.blocks)-1]
			tr := &last[len(last)-1]
			tr.body[2]++ // first byte of the count (after type and a one-byte time delta)
			return rf.bytes(t)
		}, want{Altered, total - 1, "frame checksum mismatch"}},
		{"alter the trailer and fix its link", testKey, func(t *testing.T, b []byte) []byte {
			rf := parseRaw(t, b)
			last := rf.blocks[len(rf.blocks)-1]
			last[len(last)-1].body[len(last[len(last)-1].body)-1] ^= 1 // last MAC byte
			rechainLinksOnly(rf)
			return rf.bytes(t)
		}, want{Altered, total - 1, "trailer signature is invalid"}},
		{"truncate and turn the last checkpoint into a trailer", testKey, func(t *testing.T, b []byte) []byte {
			rf := parseRaw(t, b)
			rf.blocks = rf.blocks[:2]
			cp := &rf.blocks[1][len(rf.blocks[1])-1]
			cp.body[0] = byte(FrameTrailer)
			rechainLinksOnly(rf)
			return rf.bytes(t)
		}, want{Altered, -8, "trailer signature is invalid"}},
		{"truncate and append an unsigned trailer", testKey, func(t *testing.T, b []byte) []byte {
			rf := parseRaw(t, b)
			rf.blocks = rf.blocks[:2]
			last := rf.blocks[len(rf.blocks)-1]
			rf.blocks = append(rf.blocks, []rawFrame{{body: []byte{byte(FrameEnd), 0, 0}}, {body: append([]byte{byte(FrameTrailer), 0}, last[len(last)-1].body[2:]...)}})
			rf.rechain(nil, 2)
			return rf.bytes(t)
		}, want{Altered, -2, "unsigned trailer"}},
		{"data appended after the trailer", testKey, func(t *testing.T, b []byte) []byte {
			return append(b, b[offs[1]:offs[2]]...)
		}, want{Altered, total, "data after the trailer"}},
		{"zero-filled tail", testKey, func(t *testing.T, b []byte) []byte {
			return append(b[:offs[3]:offs[3]], make([]byte, 4096)...)
		}, want{Unfinished, -6, "zero-filled tail"}},
		{"verified with the wrong key", []byte("wrong-key-wrong-key-wrong-key-wrong"), func(t *testing.T, b []byte) []byte {
			return b
		}, want{Unverified, -1, "not with the given key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.tamper(t, bytes.Clone(orig))
			rep := verifyBytes(t, b, tc.key)
			if rep.OK() || rep.Status != tc.want.status {
				t.Fatalf("status %s, want %s: %v", rep.Status, tc.want.status, rep)
			}
			if !strings.Contains(rep.Problem, tc.want.problem) {
				t.Errorf("problem %q does not mention %q", rep.Problem, tc.want.problem)
			}
			rf := parseRaw(t, orig)
			wantBad := tc.want.badFrame
			switch wantBad {
			case -3: // first frame of block 2
				wantBad = rf.frameIndex(2, 0)
			case -4: // frame 3 of block 1: its successor moved into its place
				wantBad = rf.frameIndex(1, 3)
			case -5:
				wantBad = rf.frameIndex(1, 2)
			case -6:
				wantBad = rf.frameIndex(1, 0)
				if tc.want.status == Unfinished {
					wantBad = rf.frameIndex(3, 0)
				}
			case -7: // the first checkpoint after the edited row
				wantBad = rf.frameIndex(1, len(rf.blocks[1])-1)
			case -8:
				wantBad = rf.frameIndex(1, len(rf.blocks[1])-1)
			case -2: // the appended trailer
				wantBad = rf.frameIndex(2, 1)
			}
			if tc.want.status != Unverified && rep.BadFrame != wantBad {
				t.Errorf("bad frame %d, want %d (%v)", rep.BadFrame, wantBad, rep)
			}
			if tc.want.status == Altered && rep.BadFrame >= 0 && rep.Frames != rep.BadFrame {
				t.Errorf("%d frames check before bad frame %d", rep.Frames, rep.BadFrame)
			}
			if !strings.Contains(rep.String(), string(rep.Status)) {
				t.Errorf("summary %q does not name the status", rep.String())
			}
			if rep.Status == Altered && rep.BadFrame >= 0 && !strings.Contains(rep.String(), fmt.Sprintf("first bad frame %d", rep.BadFrame)) {
				t.Errorf("summary %q does not name the first bad frame", rep.String())
			}
		})
	}
}

// editRow changes one value of a row in block 1 in place: what an editor
// covering up a query's result would do.
func editRow(t *testing.T, rf *rawFile) {
	t.Helper()
	for i, fr := range rf.blocks[1] {
		if fr.typ() == FrameRow {
			j := bytes.LastIndexByte(fr.body, '0')
			if j < 0 {
				continue
			}
			rf.blocks[1][i].body[j] = '1'
			return
		}
	}
	t.Fatal("no row to edit in block 1")
}

// rechainLinksOnly recomputes the links but keeps every seal's payload, as
// an editor without the key would to slip a change past the per-frame check.
func rechainLinksOnly(rf *rawFile) { rf.rechain(nil, len(rf.blocks)) }

func TestTruncationIsUnfinished(t *testing.T) {
	for _, c := range codecs {
		t.Run(string(c), func(t *testing.T) { truncationIsUnfinished(t, c) })
	}
}

func truncationIsUnfinished(t *testing.T, codec Compression) {
	orig := signedFixture(t, codec)
	offs := blockOffsets(t, orig)
	rf := parseRaw(t, orig)
	hdrLen := len(rf.header)
	for _, tc := range []struct {
		name   string
		at     int
		sealed int64
	}{
		{"inside the magic", 3, 0},
		{"inside the header", hdrLen - 2, 0},
		{"right after the header", hdrLen, 0},
		{"inside a block header", offs[1] + 5, rf.frameIndex(1, 0)},
		{"inside a block", offs[2] + 40, rf.frameIndex(2, 0)},
		{"at a block boundary", offs[3], rf.frameIndex(3, 0)},
		{"one byte short of the trailer block's end", len(orig) - 1, rf.frameIndex(len(rf.blocks)-1, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := verifyBytes(t, orig[:tc.at], testKey)
			if rep.Status != Unfinished || rep.OK() {
				t.Fatalf("status %s, want unfinished: %v", rep.Status, rep)
			}
			if rep.Sealed != tc.sealed || rep.Frames != tc.sealed {
				t.Errorf("sealed %d, frames %d; want %d", rep.Sealed, rep.Frames, tc.sealed)
			}
			if rep.Trailer.Present {
				t.Errorf("trailer reported present")
			}
			if tc.at > hdrLen && rep.BadFrame != tc.sealed {
				t.Errorf("bad frame %d, want %d (the first missing)", rep.BadFrame, tc.sealed)
			}
		})
	}
}

func TestWithoutKeyOnlyNaiveEditsAreCaught(t *testing.T) {
	// The threat model, pinned down: without the key, Verify sees the chain
	// and reports the signature as unchecked; a complete re-seal that also
	// strips the key id then passes. Auditors must verify with the key.
	orig := signedFixture(t, CompressZstd)
	if rep := verifyBytes(t, orig, nil); !rep.OK() || !rep.Signed || rep.Checked || !strings.Contains(rep.String(), "not checked") {
		t.Errorf("signed file without key: %v", rep)
	}
	rf := parseRaw(t, orig)
	editRow(t, rf)
	rf.editHeader(t, func(h *Header) { h.KeyID = "" })
	rf.rechain(nil, 0)
	forged := rf.bytes(t)
	if rep := verifyBytes(t, forged, nil); !rep.OK() || rep.Signed {
		t.Errorf("forged unsigned file without key: %v", rep)
	}
	if rep := verifyBytes(t, forged, testKey); rep.OK() {
		t.Errorf("forged file passes with the key: %v", rep)
	}
}

// TestHeaderVersions pins down which version and codec pairs a reader
// accepts: version 1 is zstd and names no codec, versions 2 and 3 name zstd
// or s2.
func TestHeaderVersions(t *testing.T) {
	orig := signedFixture(t, CompressZstd)
	for _, tc := range []struct {
		name    string
		version uint16
		codec   string
		problem string // empty: the file verifies
	}{
		{"version 1", 1, "", ""},
		{"version 2 naming zstd", 2, "zstd", ""},
		{"version 2 naming no codec", 2, "", "unknown compression"},
		{"version 2 naming an unknown codec", 2, "lz4", "unknown compression"},
		{"version 1 naming a codec", 1, "zstd", "version 1 header names a compression"},
		{"version 3 naming s2", 3, "s2", "block does not decompress"},
		{"version 3 naming zstd", 3, "zstd", ""},
		{"version 3 naming no codec", 3, "", "unknown compression"},
		{"version 4", 4, "zstd", "format version 4 is not supported"},
		{"version 0", 0, "", "format version 0 is not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rf := parseRaw(t, orig)
			hlen := int(binary.LittleEndian.Uint32(rf.header[10:]))
			var h map[string]any
			must(t, json.Unmarshal(rf.header[len(magic)+6:len(magic)+6+hlen], &h))
			if tc.codec != "" {
				h["compression"] = tc.codec
			}
			js, err := json.Marshal(h)
			must(t, err)
			hb := append(magic[:], 0, 0, 0, 0, 0, 0)
			binary.LittleEndian.PutUint16(hb[8:], tc.version)
			binary.LittleEndian.PutUint32(hb[10:], uint32(len(js)))
			hb = append(hb, js...)
			hb = binary.LittleEndian.AppendUint32(hb, crc32.Checksum(hb, castagnoli))
			rf.header = hb
			rf.rechain(testKey, 0)
			rep := verifyBytes(t, rf.bytes(t), testKey)
			if tc.problem == "" {
				if !rep.OK() {
					t.Fatalf("%v", rep)
				}
				return
			}
			wantBad := int64(-1) // the header
			if tc.problem == "block does not decompress" {
				wantBad = 0
			}
			if rep.Status != Altered || !strings.Contains(rep.Problem, tc.problem) || rep.BadFrame != wantBad {
				t.Errorf("got %v; want altered header: %s", rep, tc.problem)
			}
		})
	}
}

// TestS2LengthIsCheckedFirst: an S2 block that states another length than
// its block header is refused before it is decoded, so a hostile stated
// length can never make the reader allocate past the header's bound.
func TestS2LengthIsCheckedFirst(t *testing.T) {
	orig := signedFixture(t, CompressS2)
	offs := blockOffsets(t, orig)
	b := bytes.Clone(orig)
	p := offs[1]
	rlen := binary.LittleEndian.Uint32(b[p+4:])
	binary.LittleEndian.PutUint32(b[p+4:], rlen-1)
	end := p + blockHdrSize + int(binary.LittleEndian.Uint32(b[p:]))
	binary.LittleEndian.PutUint32(b[end:], crc32.Checksum(b[p:end], castagnoli))
	rep := verifyBytes(t, b, testKey)
	if rep.Status != Altered || !strings.Contains(rep.Problem, "decompressed length differs") {
		t.Fatalf("got %v; want altered: the decompressed length differs", rep)
	}
	if want := parseRaw(t, orig).frameIndex(1, 0); rep.BadFrame != want {
		t.Errorf("bad frame %d, want %d", rep.BadFrame, want)
	}
}
