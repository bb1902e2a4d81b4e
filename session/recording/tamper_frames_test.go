package recording

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
)

// v3Fixture records a signed HTTP session over several small blocks, its
// responses as exchanges and, from a Redis engine behind it, replies.
func v3Fixture(t testing.TB, codec Compression) []byte {
	t.Helper()
	f := newFactory(t, Config{Rows: RowsAll, BlockSize: MinBlockSize, Compression: codec}, Options{Key: testKey})
	rec, err := f.Open(httpInfo("fixture"))
	must(t, err)
	for i := range 150 {
		must(t, rec.Command(&protocols.Command{Kind: "request"}, fmt.Sprintf("GET /v1/items/%d", i)))
		must(t, rec.Decision(protocols.Decision{Action: protocols.Allow}))
		must(t, rec.Exchange(protocols.Exchange{Method: "GET", Path: fmt.Sprintf("/v1/items/%d", i), Status: 200,
			RequestHeaders:  []protocols.Header{{Name: "Authorization", Value: "Bearer t"}, {Name: "Accept", Value: "*/*"}},
			ResponseHeaders: []protocols.Header{{Name: "Content-Type", Value: "application/json"}},
			ResponseBody:    fmt.Appendf(nil, `{"id": %d, "price": "%06d"}`, i, i*7919)}))
		must(t, rec.Reply(protocols.Reply{Kind: "array", Count: 2, Values: [][]byte{[]byte("cached"), fmt.Appendf(nil, "value-%04d", i)}}))
	}
	must(t, rec.Close("client closed"))
	b, err := os.ReadFile(recordingPath(t, f, "fixture"))
	must(t, err)
	if rep := verifyBytes(t, b, testKey); !rep.OK() || rep.Blocks < 4 {
		t.Fatalf("fixture: %v, %d blocks", rep, rep.Blocks)
	}
	return b
}

// TestTamperWithNewFrames: editing a reply's value or an exchange's header
// is detected like any other edit, whether or not the editor fixes the
// frame links, and re-sealing needs the key.
func TestTamperWithNewFrames(t *testing.T) {
	for _, codec := range codecs {
		orig := v3Fixture(t, codec)
		for _, tc := range []struct {
			name    string
			edit    func(t *testing.T, rf *rawFile) int // returns the edited frame's index in block 1
			fix     func(rf *rawFile)
			problem string
			atSeal  bool // the first bad frame is block 1's checkpoint, not the edited frame
		}{
			{"a reply value", editReply, func(*rawFile) {}, "frame checksum mismatch", false},
			{"a reply value, links fixed", editReply, rechainLinksOnly, "checkpoint chain head does not match", true},
			{"a reply value, re-sealed without the key", editReply, func(rf *rawFile) { rf.rechain(nil, 1) }, "unsigned checkpoint", true},
			{"a removed header value restored", editHeaderValue, func(*rawFile) {}, "frame checksum mismatch", false},
			{"a removed header value restored, links fixed", editHeaderValue, rechainLinksOnly, "checkpoint chain head does not match", true},
			{"a response status", editStatus, rechainLinksOnly, "checkpoint chain head does not match", true},
		} {
			t.Run(string(codec)+"/"+tc.name, func(t *testing.T) {
				rf := parseRaw(t, orig)
				i := tc.edit(t, rf)
				tc.fix(rf)
				rep := verifyBytes(t, rf.bytes(t), testKey)
				want := rf.frameIndex(1, i)
				if tc.atSeal {
					want = rf.frameIndex(1, len(rf.blocks[1])-1)
				}
				if rep.Status != Altered || !strings.Contains(rep.Problem, tc.problem) || rep.BadFrame != want {
					t.Errorf("got %v (bad frame %d); want altered at frame %d: %s", rep, rep.BadFrame, want, tc.problem)
				}
			})
		}
	}
}

// editFrame changes the first frame of type typ in block 1 that edit
// accepts and returns its index.
func editFrame(t *testing.T, rf *rawFile, typ FrameType, edit func(body []byte) bool) int {
	t.Helper()
	for i, fr := range rf.blocks[1] {
		if fr.typ() == typ && edit(fr.body) {
			return i
		}
	}
	t.Fatalf("no %s frame to edit in block 1", typ)
	return -1
}

func editReply(t *testing.T, rf *rawFile) int {
	return editFrame(t, rf, FrameReply, func(body []byte) bool {
		j := bytes.LastIndex(body, []byte("value-")) + len("value-")
		body[j] ^= 1
		return true
	})
}

func editHeaderValue(t *testing.T, rf *rawFile) int {
	return editFrame(t, rf, FrameExchange, func(body []byte) bool {
		j := bytes.Index(body, []byte(removed))
		copy(body[j:], "Bearer xy") // as long as the marker
		return true
	})
}

func editStatus(t *testing.T, rf *rawFile) int {
	return editFrame(t, rf, FrameExchange, func(body []byte) bool {
		_, k := binary.Uvarint(body[1:])
		payload := body[1+k:]
		x, err := decodeExchange(payload)
		if err != nil || x.Status != 200 {
			return false
		}
		x.Status = 404 // a uvarint as long as 200's
		edited := appendExchange(nil, exchangeOf(x), true, maxText)
		if len(edited) != len(payload) {
			t.Fatalf("re-encoded exchange is %d bytes, was %d", len(edited), len(payload))
		}
		copy(payload, edited)
		return true
	})
}
