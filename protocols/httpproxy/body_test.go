package httpproxy

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/airlock-gw/airlock/masking"
)

func testMasker(t testing.TB) *masking.Masker {
	t.Helper()
	src, err := masking.New(masking.Config{
		Detect:    []masking.DetectRule{{Entity: "email", Strategy: masking.Redact}, {Entity: "payment_card", Strategy: masking.Redact}},
		JSONPaths: []masking.JSONPathRule{{Path: "$.data[*].ssn", Strategy: masking.Redact}},
	}, "test", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return src.For(idOf("x")).(*masking.Masker)
}

func TestKindOf(t *testing.T) {
	for ct, want := range map[string]bodyKind{
		"application/json; charset=utf-8": kindJSON, "application/problem+json": kindJSON, "text/event-stream": kindEvents,
		"application/x-ndjson": kindLines, "text/plain": kindText, "": kindText, "image/png": kindBinary,
		"application/octet-stream": kindBinary, "application/grpc+proto": kindGRPC, "application/grpc-web": kindGRPC,
	} {
		if got := kindOf(ct); got != want {
			t.Errorf("%q: %d, want %d", ct, got, want)
		}
	}
}

// collect reads a transform and returns what each Read returned.
func collect(t *testing.T, tr io.Reader) []string {
	t.Helper()
	var out []string
	buf := make([]byte, 64<<10)
	for {
		n, err := tr.Read(buf)
		if n > 0 {
			out = append(out, string(buf[:n]))
		}
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestEventsMaskedOneByOne(t *testing.T) {
	m := testMasker(t)
	in := "event: a\ndata: {\"email\":\"a.person@example.com\"}\n\n: comment\ndata: card 4111 1111 1111 1111\n\ndata: [DONE]\n\n"
	tr := newTransform(io.NopCloser(strings.NewReader(in)), eventUnit(1<<20), func(b []byte) []byte { return maskDocument(m, kindEvents, b, noScrub) })
	got := collect(t, tr)
	if len(got) != 3 {
		t.Fatalf("%d reads, want one per event: %q", len(got), got)
	}
	if strings.Contains(got[0], "a.person@") || !strings.Contains(got[0], `"email":"[redacted:email]"`) || !strings.HasSuffix(got[0], "\n\n") {
		t.Errorf("event 1: %q", got[0])
	}
	if !strings.Contains(got[1], "[redacted:payment_card]") {
		t.Errorf("event 2: %q", got[1])
	}
}

func TestLinesAndLimits(t *testing.T) {
	m := testMasker(t)
	in := `{"data":[{"ssn":"1"}]}` + "\n" + `{"e":"x@example.com"}` + "\n"
	tr := newTransform(io.NopCloser(strings.NewReader(in)), lineUnit(1<<20), func(b []byte) []byte { return maskDocument(m, kindLines, b, noScrub) })
	got := strings.Join(collect(t, tr), "")
	if got != `{"data":[{"ssn":"[redacted]"}]}`+"\n"+`{"e":"[redacted:email]"}`+"\n" {
		t.Errorf("lines: %q", got)
	}
	tr = newTransform(io.NopCloser(strings.NewReader(strings.Repeat("x", 100))), wholeUnit(10), func(b []byte) []byte { return b })
	if _, err := io.ReadAll(tr); err != errTooLarge {
		t.Errorf("a body past the limit: %v", err)
	}
}

func TestScrubAcrossChunks(t *testing.T) {
	const secret = "up-Secret-value-123456"
	sc := newScrubber([]string{secret})
	// An opaque body whose secret straddles the reader's chunks.
	body := strings.Repeat("z", 32<<10-5) + secret + strings.Repeat("y", 100)
	tr := newTransform(io.NopCloser(&slowReader{s: body, n: 32 << 10}), chunkUnit(sc.longest), sc.bytes)
	got := strings.Join(collect(t, tr), "")
	if strings.Contains(got, secret) || !strings.Contains(got, scrubbed) || len(got) != len(body)-len(secret)+len(scrubbed) {
		t.Errorf("secret not scrubbed across chunks (%d bytes)", len(got))
	}
	h := map[string][]string{"Location": {"https://x/?k=" + secret}}
	sc.header(h)
	if strings.Contains(h["Location"][0], secret) {
		t.Error("header not scrubbed")
	}
}

type slowReader struct {
	s string
	n int
}

func (r *slowReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.n)], r.s)
	r.s = r.s[n:]
	return n, nil
}

func TestDecoded(t *testing.T) {
	const text = `{"email":"z@example.com"}`
	var gz, br, zs bytes.Buffer
	gw := gzip.NewWriter(&gz)
	_, _ = gw.Write([]byte(text))
	_ = gw.Close()
	bw := brotli.NewWriter(&br)
	_, _ = bw.Write([]byte(text))
	_ = bw.Close()
	zw, _ := zstd.NewWriter(&zs)
	_, _ = zw.Write([]byte(text))
	_ = zw.Close()
	for enc, b := range map[string][]byte{"gzip": gz.Bytes(), "br": br.Bytes(), "zstd": zs.Bytes(), "": []byte(text), "identity": []byte(text)} {
		r, err := decoded(io.NopCloser(bytes.NewReader(b)), enc)
		if err != nil {
			t.Fatalf("%s: %v", enc, err)
		}
		got, _ := io.ReadAll(r)
		if string(got) != text {
			t.Errorf("%s: %q", enc, got)
		}
	}
	if _, err := decoded(io.NopCloser(strings.NewReader("x")), "compress"); err == nil {
		t.Error("an unknown coding was accepted")
	}
	if got := acceptedEncodings("gzip, compress;q=0.5, br;q=1, sdch"); got != "gzip, br;q=1" {
		t.Errorf("accepted encodings: %q", got)
	}
}

// FuzzEvents splits and masks arbitrary event streams: no panic, and
// nothing is lost but what masking replaced.
func FuzzEvents(f *testing.F) {
	f.Add([]byte("data: {\"a\":1}\n\ndata: x\r\n\r\n"))
	f.Add([]byte("event: e\ndata: a@b.co\n"))
	f.Add([]byte("\n\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		tr := newTransform(io.NopCloser(bytes.NewReader(in)), eventUnit(1<<16), func(b []byte) []byte { return b })
		out, err := io.ReadAll(tr)
		if err == nil && !bytes.Equal(out, in) {
			t.Fatalf("events changed the stream: %q -> %q", in, out)
		}
	})
}

// FuzzFrames reads arbitrary gRPC message streams: no panic, frames
// reassemble the input.
func FuzzFrames(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 2, 'h', 'i', 0, 0, 0, 0, 0})
	f.Add([]byte{1, 0, 0, 0, 9})
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReader(bytes.NewReader(in))
		var out []byte
		next := frameUnit(1 << 16)
		for {
			fr, err := next(br)
			out = append(out, fr...)
			if err != nil {
				break
			}
		}
		if !bytes.HasPrefix(in, out) {
			t.Fatalf("frames are not the input's: %x -> %x", in, out)
		}
	})
}
