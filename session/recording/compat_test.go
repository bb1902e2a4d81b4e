package recording

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEarlierVersionsStillRead reads recordings committed under testdata
// exactly as earlier writers stored them, format versions 1 (zstd) and 2
// (s2), signed, with a params frame and binary values of known PostgreSQL
// types. They are never regenerated: every later reader must verify them
// and replay them as the golden transcripts say.
func TestEarlierVersionsStillRead(t *testing.T) {
	for _, tc := range []struct {
		file    string
		version int
		codec   Compression
	}{
		{"v1.alrec", 1, CompressZstd},
		{"v2.alrec", 2, CompressS2},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tc.file))
			must(t, err)
			rep := verifyBytes(t, b, testKey)
			if !rep.OK() || !rep.Checked || rep.Header.Version != tc.version || rep.Header.codec() != tc.codec {
				t.Fatalf("report %v, header %+v", rep, rep.Header)
			}
			for _, js := range []bool{false, true} {
				var out bytes.Buffer
				rep, err := Replay(&out, bytes.NewReader(b), ReplayOptions{Key: testKey, JSON: js})
				must(t, err)
				if !rep.OK() {
					t.Fatalf("replay report %v", rep)
				}
				golden := strings.TrimSuffix(tc.file, FileExt) + ".golden"
				if js {
					golden = strings.TrimSuffix(tc.file, FileExt) + ".jsonl.golden"
				}
				checkGolden(t, golden, out.Bytes())
			}
		})
	}
}
