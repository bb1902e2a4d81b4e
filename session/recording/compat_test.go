package recording

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEarlierVersionsStillRead reads recordings committed under testdata
// exactly as earlier writers stored them: format versions 1 (zstd) and 2
// (s2) of a PostgreSQL session with a params frame and binary values of
// known types, and version 3 sessions of Redis (replies) and HTTP
// (exchanges). All are signed. They are never regenerated: every later
// reader must verify them and replay them as their golden transcripts say.
func TestEarlierVersionsStillRead(t *testing.T) {
	for _, tc := range []struct {
		file    string
		version int
		codec   Compression
	}{
		{"v1.alrec", 1, CompressZstd},
		{"v2.alrec", 2, CompressS2},
		{"v3-redis.alrec", 3, CompressZstd},
		{"v3-http.alrec", 3, CompressS2},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tc.file))
			must(t, err)
			rep := verifyBytes(t, b, testKey)
			if !rep.OK() || !rep.Checked || rep.Header.Version != tc.version || rep.Header.codec() != tc.codec {
				t.Fatalf("report %v, header %+v", rep, rep.Header)
			}
			checkReplayGolden(t, b, strings.TrimSuffix(tc.file, FileExt))
		})
	}
}
