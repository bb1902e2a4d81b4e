package recording

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
)

// recordFinished records a multi-block session with codec and returns its
// path.
func recordFinished(t *testing.T, codec Compression, key []byte, info protocols.SessionInfo) string {
	t.Helper()
	f := newFactory(t, Config{Rows: RowsAll, BlockSize: MinBlockSize, Compression: codec}, Options{Key: key, Version: "t", Node: "n"})
	rec, err := f.Open(info)
	must(t, err)
	sampleSession(t, rec)
	for i := range 300 { // several blocks
		must(t, rec.Row([][]byte{fmt.Appendf(nil, "%d", i), []byte("a row that repeats, as rows do"), nil}))
	}
	must(t, rec.Close("client closed"))
	return recordingPath(t, f, info.ID)
}

// transcript is what a replay shows of a recording: every frame but the
// seals, whose heads differ after re-chaining.
func transcript(t *testing.T, path string, key []byte) []Frame {
	t.Helper()
	res := readFile(t, path, key)
	var out []Frame
	for _, f := range res.frames {
		if !f.Type.isSeal() {
			out = append(out, *f)
		}
	}
	return out
}

func TestRecompressRoundTrip(t *testing.T) {
	redis := testInfo("rc-redis")
	redis.Protocol = protocols.Redis
	for _, tc := range []struct {
		name     string
		from, to Compression
		key      []byte
		info     protocols.SessionInfo
		version  int
	}{
		{"s2 to zstd signed", CompressS2, CompressZstd, testKey, testInfo("rc-1"), 1},
		{"s2 to zstd unsigned", CompressS2, CompressZstd, nil, testInfo("rc-2"), 1},
		{"zstd to s2 signed", CompressZstd, CompressS2, testKey, testInfo("rc-3"), 2},
		{"redis s2 to zstd", CompressS2, CompressZstd, testKey, redis, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := recordFinished(t, tc.from, tc.key, tc.info)
			want := transcript(t, path, tc.key)
			before, err := VerifyFile(path, tc.key)
			must(t, err)
			res, err := Recompress(path, tc.to, tc.key)
			must(t, err)
			if res.From != tc.from || res.To != tc.to || res.Resealed != (tc.key != nil) || res.Frames != before.Frames {
				t.Fatalf("result %+v", res)
			}
			if st, err := os.Stat(path); err != nil || st.Size() != res.After || st.Mode().Perm() != 0o600 {
				t.Fatalf("file after: %v %v, result says %d bytes", st, err, res.After)
			}
			rep, err := VerifyFile(path, tc.key)
			must(t, err)
			if rep.Status != Intact || rep.Frames != before.Frames || rep.Blocks != before.Blocks || rep.Checked != (tc.key != nil) {
				t.Fatalf("after: %s (before: %s)", rep, before)
			}
			if rep.Header.Version != tc.version || rep.Header.codec() != tc.to {
				t.Fatalf("header %+v", rep.Header)
			}
			if got := transcript(t, path, tc.key); !reflect.DeepEqual(got, want) {
				t.Fatal("frames differ after recompression")
			}
			if m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*")); len(m) != 0 {
				t.Fatalf("temporary files left: %v", m)
			}
			again, err := Recompress(path, tc.to, tc.key)
			if err != nil || !again.Skipped() {
				t.Fatalf("second run: %+v %v", again, err)
			}
		})
	}
}

func TestRecompressSignedNeedsKey(t *testing.T) {
	path := recordFinished(t, CompressS2, testKey, testInfo("rc-key"))
	orig, _ := os.ReadFile(path)
	for _, key := range [][]byte{nil, []byte("another-key-0123456789abcdef-01234567")} {
		if _, err := Recompress(path, CompressZstd, key); !errors.Is(err, ErrNeedsKey) {
			t.Fatalf("key %q: %v, want ErrNeedsKey", key, err)
		}
	}
	if now, _ := os.ReadFile(path); string(now) != string(orig) {
		t.Fatal("refused recording was changed")
	}
}

func TestRecompressRefusesUnfinishedAndAltered(t *testing.T) {
	// A session still recording: its file has no trailer yet.
	f := newFactory(t, Config{Rows: RowsAll, BlockSize: MinBlockSize, Compression: CompressS2}, Options{Key: testKey})
	rec := open(t, f, "rc-open")
	sampleSession(t, rec)
	for i := range 300 {
		must(t, rec.Row([][]byte{fmt.Appendf(nil, "%d", i), []byte("an open session's row")}))
	}
	open := recordingPath(t, f, "rc-open")
	if _, err := Recompress(open, CompressZstd, testKey); !errors.Is(err, ErrNotIntact) {
		t.Fatalf("open recording: %v, want ErrNotIntact", err)
	}
	must(t, rec.Close("done"))

	path := recordFinished(t, CompressS2, testKey, testInfo("rc-bad"))
	b, err := os.ReadFile(path)
	must(t, err)
	b[len(b)/2] ^= 0x40
	must(t, os.WriteFile(path, b, 0o600))
	if _, err := Recompress(path, CompressZstd, testKey); !errors.Is(err, ErrNotIntact) {
		t.Fatalf("altered recording: %v, want ErrNotIntact", err)
	}
	if now, _ := os.ReadFile(path); string(now) != string(b) {
		t.Fatal("altered recording was changed")
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*")); len(m) != 0 {
		t.Fatalf("temporary files left: %v", m)
	}
}

// TestRecompressedTamperDetected: a recompressed recording is as tamper
// evident as one written with its codec.
func TestRecompressedTamperDetected(t *testing.T) {
	path := recordFinished(t, CompressS2, testKey, testInfo("rc-tamper"))
	_, err := Recompress(path, CompressZstd, testKey)
	must(t, err)
	good, err := os.ReadFile(path)
	must(t, err)
	for _, off := range []int{len(good) / 3, len(good) / 2, len(good) - 10} {
		b := append([]byte(nil), good...)
		b[off] ^= 0x01
		must(t, os.WriteFile(path, b, 0o600))
		rep, err := VerifyFile(path, testKey)
		must(t, err)
		if rep.Status != Altered {
			t.Fatalf("byte %d flipped: %s", off, rep)
		}
	}
}

// TestRecompressEarlierVersions rewrites the recordings earlier writers
// stored (testdata) with the other codec: each still verifies with the key
// and holds the same frames.
func TestRecompressEarlierVersions(t *testing.T) {
	for file, to := range map[string]Compression{"v1.alrec": CompressS2, "v2.alrec": CompressZstd,
		"v3-redis.alrec": CompressS2, "v3-http.alrec": CompressZstd} {
		t.Run(file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", file))
			must(t, err)
			path := filepath.Join(t.TempDir(), file)
			must(t, os.WriteFile(path, b, 0o600))
			want := transcript(t, path, testKey)
			res, err := Recompress(path, to, testKey)
			must(t, err)
			rep, err := VerifyFile(path, testKey)
			must(t, err)
			if res.Skipped() || !rep.OK() || !rep.Checked || rep.Header.codec() != to {
				t.Fatalf("%+v: %s", res, rep)
			}
			if got := transcript(t, path, testKey); !reflect.DeepEqual(got, want) {
				t.Fatal("frames differ after recompression")
			}
		})
	}
}
