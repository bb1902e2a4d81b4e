package resp

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the committed fuzz seed corpus from the table tests")

// requestSeeds are the table tests' inputs, one command stream each.
func requestSeeds() []string {
	seeds := []string{
		"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n*1\r\n$4\r\nPING\r\n",
		"PING\r\n\r\n  \n*0\r\n*-1\r\nSET \"a\\x41\\n\" 'b\\'c'\r\n",
		"*2\r\n$4\r\nECHO\r\n$4\r\na\r\nb\r\n",
		"*1\r\n$4\r\nPINGXY", "*1\r\n:4\r\n", "*01\r\n", "ECHO \"abc\r\n", "ECHO a\x00b\r\n",
	}
	for _, tc := range splitCases {
		seeds = append(seeds, tc.line+"\r\n")
	}
	return seeds
}

// FuzzRequest checks that the request decoder never panics, that every raw
// command is the next piece of the input (after only skippable bytes), and
// that the arguments survive re-encoding as RESP and as an inline line.
func FuzzRequest(f *testing.F) {
	for _, s := range requestSeeds() {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, bytewise bool) {
		size := 4096
		if bytewise {
			size = 16
		}
		d := NewRequestDecoder(newReader(string(data), size, bytewise), RequestLimits{MaxBulk: 1 << 16, MaxCommand: 1 << 20})
		pos := 0
		for {
			args, raw, err := d.Next()
			if err != nil {
				checkRequestEnd(t, d, err)
				return
			}
			at := bytes.Index(data[pos:], raw)
			if at < 0 {
				t.Fatalf("raw %q is not in the rest of the input", raw)
			}
			if skipped, _ := decodeCommands(string(data[pos:pos+at]), RequestLimits{}, false, 4096, false); len(skipped) > 0 {
				t.Fatalf("bytes before %q hold commands %v", raw, skipped)
			}
			pos += at + len(raw)
			checkArgs(t, args, raw, d.Inline())
		}
	})
}

func checkRequestEnd(t *testing.T, d *RequestDecoder, err error) {
	if err != io.EOF && err != io.ErrUnexpectedEOF && !IsProtocolError(err) {
		t.Fatalf("error of no known kind: %v", err)
	}
	if _, _, again := d.Next(); again != err {
		t.Fatalf("error %v, then %v", err, again)
	}
}

// checkArgs re-encodes args both ways and decodes them back.
func checkArgs(t *testing.T, args [][]byte, raw []byte, inline bool) {
	if !inline && !bytes.Equal(AppendArgs(nil, args), raw) {
		t.Fatalf("re-encoded %q, received %q", AppendArgs(nil, args), raw)
	}
	if inline {
		line := strings.TrimSuffix(strings.TrimSuffix(string(raw), "\n"), "\r")
		if again, ok := splitLine(line); !ok || !sameArgs(again, args) {
			t.Fatalf("%q split again into %q, first %q", line, again, args)
		}
	}
	for _, in := range [][]byte{AppendArgs(nil, args), append(quoteInline(args), '\r', '\n')} {
		got, err := decodeCommands(string(in), RequestLimits{}, false, 4096, false)
		if err != nil || len(got) != 1 || !sameArgs(got[0].args, args) {
			t.Fatalf("%q decoded to %+v %v, want %q", in, got, err, args)
		}
	}
}

func sameArgs(a []string, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != string(b[i]) {
			return false
		}
	}
	return true
}

// FuzzReply checks that the reply decoder never panics, holds no more than
// its bounds, gives raw bytes that concatenate to the input, re-encodes to
// the same bytes, and decodes the same way whatever the input's buffering.
func FuzzReply(f *testing.F) {
	for _, tc := range replyCases {
		f.Add([]byte(tc.in), uint8(0))
	}
	f.Add([]byte("*2\r\n$10\r\n0123456789\r\n=9\r\ntxt:hello\r\n"), uint8(3))
	f.Add([]byte(strings.Repeat("*1\r\n", 60)+":1\r\n"), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		opts := ReplyOptions{ChunkSize: int(chunk%64) + 1, MaxDepth: 50, MaxLine: 4096}
		sig1, raw, err := replySignature(t, data, opts, 4096, false)
		if !bytes.HasPrefix(data, raw) || (err == nil && len(raw) != len(data)) {
			t.Fatalf("raw bytes %q are not the input %q (error %v)", raw, data, err)
		}
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !IsProtocolError(err) {
			t.Fatalf("error of no known kind: %v", err)
		}
		sig2, _, err2 := replySignature(t, data, opts, 16, true)
		if !reflect.DeepEqual(sig1, sig2) || (err == nil) != (err2 == nil) {
			t.Fatalf("buffering changed the decoding:\n%q %v\n%q %v", sig1, err, sig2, err2)
		}
	})
}

// replySignature decodes data and returns what must not depend on how the
// input is buffered (every token but the chunks, whose payloads are joined
// into the end), the raw bytes, and the error that stopped it.
func replySignature(t *testing.T, data []byte, opts ReplyOptions, size int, bytewise bool) ([]string, []byte, error) {
	d := NewReplyDecoder(newReader(string(data), size, bytewise), opts)
	var sig []string
	var raw, again, joined []byte
	for {
		tok, err := d.Next()
		if err == io.EOF {
			err = nil
		}
		if err != nil || tok.Raw == nil {
			if !bytes.Equal(raw, again) {
				t.Fatalf("re-encoded %q, raw %q", again, raw)
			}
			return sig, raw, err
		}
		raw = append(raw, tok.Raw...)
		if again, err = AppendToken(again, tok, tok.Payload); err != nil {
			t.Fatalf("re-encode %s: %v", describe(tok), err)
		}
		if d.Depth() > opts.MaxDepth+1 || len(tok.Payload) > max(opts.ChunkSize, opts.MaxLine) {
			t.Fatalf("bounds exceeded: depth %d, payload %d", d.Depth(), len(tok.Payload))
		}
		if tok.Complete && d.Depth() != 0 {
			t.Fatalf("Complete at depth %d", d.Depth())
		}
		switch tok.Part {
		case PartChunk:
			joined = append(joined, tok.Payload...)
			continue
		case PartEnd:
			sig = append(sig, fmt.Sprintf("%s %q d%d", describe(tok), joined, tok.Depth))
			joined = joined[:0]
			continue
		}
		sig = append(sig, fmt.Sprintf("%s d%d", describe(tok), tok.Depth))
	}
}

// TestSeedCorpus writes the committed seed corpus with -update, and
// otherwise checks it is there.
func TestSeedCorpus(t *testing.T) {
	write := func(target, name, body string) {
		path := filepath.Join("testdata", "fuzz", target, name)
		if !*update {
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("seed corpus missing (go test -run TestSeedCorpus -update): %v", err)
			}
			return
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("go test fuzz v1\n"+body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range requestSeeds() {
		write("FuzzRequest", fmt.Sprintf("seed%02d", i), fmt.Sprintf("[]byte(%q)\nbool(%v)\n", s, i%2 == 1))
	}
	for i, tc := range replyCases {
		write("FuzzReply", fmt.Sprintf("seed%02d", i), fmt.Sprintf("[]byte(%q)\nbyte(%q)\n", tc.in, rune(i%5)))
	}
}
