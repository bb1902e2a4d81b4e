package redis

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/airlock-gw/airlock/masking"
	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/redis/resp"
)

// FuzzWalker takes any reply stream the decoder accepts through masking
// and the walker: what it writes must decode again into as many complete
// replies, whatever was masked, withheld or renamed, so that a client can
// never be desynchronised by Airlock's rewriting.
func FuzzWalker(f *testing.F) {
	for _, seed := range []string{
		"+OK\r\n$15\r\nann@example.com\r\n",
		"*4\r\n$8\r\nsecret_x\r\n$3\r\nabc\r\n$4\r\nmail\r\n$14\r\nbo@example.com\r\n",
		"%2\r\n+secret\r\n+x\r\n$5\r\nemail\r\n_\r\n",
		"|1\r\n+a\r\n:1\r\n>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$11\r\nto@ex.am.pl\r\n",
		"*2\r\n$0\r\n\r\n*1\r\n$2000\r\n" + string(bytes.Repeat([]byte("x"), 2000)) + "\r\n",
		"-MOVED 1 h:1\r\n=15\r\ntxt:a@example.com\r\n",
		"*3\r\n$1\r\na\r\n*-1\r\n$-1\r\n",
	} {
		f.Add([]byte(seed), uint8(1))
	}
	src, err := masking.New(masking.Config{
		Detect:  []masking.DetectRule{{Entity: "email", Strategy: masking.Partial}},
		Columns: []masking.ColumnRule{{Name: "secret*", Strategy: masking.Null}},
	}, "fuzz", nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	m := src.For(protocols.Identity{Name: "x"})
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) { walkFuzz(t, m, data, mode) })
}

func walkFuzz(t *testing.T, m protocols.Masker, data []byte, mode uint8) {
	dec := resp.NewReplyDecoder(bufio.NewReaderSize(bytes.NewReader(data), 64), resp.ReplyOptions{ChunkSize: 1024})
	var out bytes.Buffer
	w := walker{record: true}
	if mode&1 == 1 {
		w.masker, w.rules = m, true
	}
	sh := shape{table: "k", pairs: int(mode>>1) % 3}
	replies := 0
	started := false
	for {
		tok, err := dec.Next()
		if err != nil {
			break
		}
		if !started {
			w.begin(sh, resp.RESP3, func(b []byte) { out.Write(b) })
			started = true
		}
		w.token(tok)
		if tok.Complete {
			replies++
			started = false
			_ = w.reply()
		}
	}
	// Only whole replies were written completely; the output of a
	// cut one may end early.
	check := resp.NewReplyDecoder(bufio.NewReader(bytes.NewReader(out.Bytes())), resp.ReplyOptions{})
	got := 0
	for {
		tok, err := check.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("the walker wrote what does not decode: %v\n%q", err, out.Bytes())
			}
			break
		}
		if tok.Complete {
			got++
		}
	}
	if got < replies {
		t.Fatalf("%d replies in, %d out:\n%q", replies, got, out.Bytes())
	}
}
