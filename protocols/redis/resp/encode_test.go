package resp

import (
	"errors"
	"math"
	"testing"
)

func TestAppend(t *testing.T) {
	cases := []struct {
		name       string
		enc        func(dst []byte, p Proto) []byte
		resp2      string
		resp3      string
		decodeable bool // the output decodes back to one complete value
	}{
		{"simple", func(d []byte, _ Proto) []byte { return AppendSimple(d, "OK") }, "+OK\r\n", "+OK\r\n", true},
		{"simple blanks newlines", func(d []byte, _ Proto) []byte { return AppendSimple(d, "a\r\nb") }, "+a  b\r\n", "+a  b\r\n", true},
		{"error", func(d []byte, _ Proto) []byte { return AppendError(d, "NOAUTH Authentication required.") },
			"-NOAUTH Authentication required.\r\n", "-NOAUTH Authentication required.\r\n", true},
		{"error blanks newlines", func(d []byte, _ Proto) []byte { return AppendError(d, "ERR bad\nkey") }, "-ERR bad key\r\n", "-ERR bad key\r\n", true},
		{"int", func(d []byte, _ Proto) []byte { return AppendInt(d, -3) }, ":-3\r\n", ":-3\r\n", true},
		{"bulk", func(d []byte, _ Proto) []byte { return AppendBulk(d, []byte("a\r\nb")) }, "$4\r\na\r\nb\r\n", "$4\r\na\r\nb\r\n", true},
		{"empty bulk", func(d []byte, _ Proto) []byte { return AppendBulk(d, nil) }, "$0\r\n\r\n", "$0\r\n\r\n", true},
		{"bulk string", func(d []byte, _ Proto) []byte { return AppendBulkString(d, "hello") }, "$5\r\nhello\r\n", "$5\r\nhello\r\n", true},
		{"bulk header", func(d []byte, _ Proto) []byte { return AppendBulkHeader(d, 100) }, "$100\r\n", "$100\r\n", false},
		{"null", AppendNull, "$-1\r\n", "_\r\n", true},
		{"null array", AppendNullArray, "*-1\r\n", "_\r\n", true},
		{"array header", func(d []byte, _ Proto) []byte { return AppendArrayHeader(d, 0) }, "*0\r\n", "*0\r\n", true},
		{"map header", func(d []byte, p Proto) []byte { return AppendMapHeader(d, 3, p) }, "*6\r\n", "%3\r\n", false},
		{"empty map", func(d []byte, p Proto) []byte { return AppendMapHeader(d, 0, p) }, "*0\r\n", "%0\r\n", true},
		{"set header", func(d []byte, p Proto) []byte { return AppendSetHeader(d, 2, p) }, "*2\r\n", "~2\r\n", false},
		{"push header", func(d []byte, p Proto) []byte { return AppendPushHeader(d, 3, p) }, "*3\r\n", ">3\r\n", false},
		{"attribute header", func(d []byte, _ Proto) []byte { return AppendAttributeHeader(d, 1) }, "|1\r\n", "|1\r\n", false},
		{"double", func(d []byte, p Proto) []byte { return AppendDouble(d, 1.5, p) }, "$3\r\n1.5\r\n", ",1.5\r\n", true},
		{"double exponent", func(d []byte, p Proto) []byte { return AppendDouble(d, 1e300, p) }, "$6\r\n1e+300\r\n", ",1e+300\r\n", true},
		{"double integral", func(d []byte, p Proto) []byte { return AppendDouble(d, -10, p) }, "$3\r\n-10\r\n", ",-10\r\n", true},
		{"double inf", func(d []byte, p Proto) []byte { return AppendDouble(d, math.Inf(1), p) }, "$3\r\ninf\r\n", ",inf\r\n", true},
		{"double -inf", func(d []byte, p Proto) []byte { return AppendDouble(d, math.Inf(-1), p) }, "$4\r\n-inf\r\n", ",-inf\r\n", true},
		{"double nan", func(d []byte, p Proto) []byte { return AppendDouble(d, math.NaN(), p) }, "$3\r\nnan\r\n", ",nan\r\n", true},
		{"true", func(d []byte, p Proto) []byte { return AppendBool(d, true, p) }, ":1\r\n", "#t\r\n", true},
		{"false", func(d []byte, p Proto) []byte { return AppendBool(d, false, p) }, ":0\r\n", "#f\r\n", true},
		{"big number", func(d []byte, p Proto) []byte { return AppendBigNumber(d, "-12345678901234567890", p) },
			"$21\r\n-12345678901234567890\r\n", "(-12345678901234567890\r\n", true},
		{"bulk error", func(d []byte, p Proto) []byte { return AppendBulkError(d, "ERR a\r\nb", p) }, "-ERR a  b\r\n", "!8\r\nERR a\r\nb\r\n", true},
		{"verbatim", func(d []byte, p Proto) []byte { return AppendVerbatim(d, "txt", "a\r\nb", p) }, "$4\r\na\r\nb\r\n", "=8\r\ntxt:a\r\nb\r\n", true},
		{"verbatim odd format", func(d []byte, p Proto) []byte { return AppendVerbatim(d, "markdown", "x", p) }, "$1\r\nx\r\n", "=5\r\ntxt:x\r\n", true},
		{"command", func(d []byte, _ Proto) []byte { return AppendCommand(d, "AUTH", "u", "p w") },
			"*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$3\r\np w\r\n", "*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$3\r\np w\r\n", true},
		{"args", func(d []byte, _ Proto) []byte { return AppendArgs(d, [][]byte{[]byte("GET"), {}}) },
			"*2\r\n$3\r\nGET\r\n$0\r\n\r\n", "*2\r\n$3\r\nGET\r\n$0\r\n\r\n", true},
	}
	for _, tc := range cases {
		for _, p := range []Proto{RESP2, RESP3} {
			want := tc.resp2
			if p == RESP3 {
				want = tc.resp3
			}
			t.Run(tc.name+"/"+string(rune('0'+p)), func(t *testing.T) {
				got := tc.enc([]byte("prefix"), p)
				if string(got) != "prefix"+want {
					t.Fatalf("got %q, want %q", got, "prefix"+want)
				}
				if !tc.decodeable {
					return
				}
				toks, err := decodeReplies(want, ReplyOptions{}, 64, false)
				if err != nil || len(toks) == 0 || !toks[len(toks)-1].Complete {
					t.Fatalf("output does not decode as one value: %v %v", toks, err)
				}
			})
		}
	}
}

func TestAppendTokenReplaces(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		payload string
		want    string
		err     error
	}{
		{"bulk", "$6\r\nsecret\r\n", "****", "$4\r\n****\r\n", nil},
		{"bulk to empty", "$6\r\nsecret\r\n", "", "$0\r\n\r\n", nil},
		{"simple", "+secret\r\n", "****", "+****\r\n", nil},
		{"simple with newline", "+secret\r\n", "a\nb", "", ErrPayload},
		{"simple error", "-ERR secret\r\n", "ERR ****", "-ERR ****\r\n", nil},
		{"bulk error", "!10\r\nERR secret\r\n", "ERR\r\n****", "!9\r\nERR\r\n****\r\n", nil},
		{"verbatim keeps format", "=10\r\nmkd:secret\r\n", "**", "=6\r\nmkd:**\r\n", nil},
		{"integer", ":1234\r\n", "0", ":0\r\n", nil},
		{"integer masked as text", ":1234\r\n", "****", "", ErrPayload},
		{"double", ",1.5\r\n", "0", ",0\r\n", nil},
		{"double masked as text", ",1.5\r\n", "x", "", ErrPayload},
		{"big number", "(123\r\n", "0", "(0\r\n", nil},
		{"boolean", "#t\r\n", "f", "#f\r\n", nil},
		{"null bulk ignores payload", "$-1\r\n", "x", "$-1\r\n", nil},
		{"null ignores payload", "_\r\n", "", "_\r\n", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			toks, err := decodeReplies(tc.in, ReplyOptions{}, 64, false)
			if err != nil || len(toks) != 1 {
				t.Fatalf("decode: %v %v", toks, err)
			}
			got, err := AppendToken([]byte("x"), toks[0], []byte(tc.payload))
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if err != nil {
				if string(got) != "x" {
					t.Fatalf("dst changed on error: %q", got)
				}
				return
			}
			if string(got) != "x"+tc.want {
				t.Fatalf("got %q, want %q", got[1:], tc.want)
			}
		})
	}
	// A chunk of a streamed bulk keeps its length, since the header is out.
	toks, _ := decodeReplies("$8\r\nsecret!!\r\n", ReplyOptions{ChunkSize: 4}, 64, false)
	if _, err := AppendToken(nil, toks[1], []byte("**")); !errors.Is(err, ErrPayload) {
		t.Fatalf("shorter chunk: %v", err)
	}
	if got, err := AppendToken(nil, toks[1], []byte("****")); err != nil || string(got) != "****" {
		t.Fatalf("same-length chunk: %q %v", got, err)
	}
}

// helloReply builds the reply the gateway gives to HELLO, in either version.
func helloReply(dst []byte, p Proto) []byte {
	dst = AppendMapHeader(dst, 7, p)
	dst = AppendBulkString(dst, "server")
	dst = AppendBulkString(dst, "redis")
	dst = AppendBulkString(dst, "version")
	dst = AppendBulkString(dst, "7.0.15")
	dst = AppendBulkString(dst, "proto")
	dst = AppendInt(dst, int64(p))
	dst = AppendBulkString(dst, "id")
	dst = AppendInt(dst, 42)
	dst = AppendBulkString(dst, "mode")
	dst = AppendBulkString(dst, "standalone")
	dst = AppendBulkString(dst, "role")
	dst = AppendBulkString(dst, "master")
	dst = AppendBulkString(dst, "modules")
	return AppendArrayHeader(dst, 0)
}

func TestHelloReply(t *testing.T) {
	for _, p := range []Proto{RESP2, RESP3} {
		d := NewReplyDecoder(newReader(string(helloReply(nil, p)), 64, false), ReplyOptions{})
		n, err := readValue(d)
		if err != nil {
			t.Fatal(err)
		}
		wantKind := Map
		if p == RESP2 {
			wantKind = Array
		}
		m := mapOf(t, n)
		if n.kind != wantKind || m["proto"].str != string(rune('0'+p)) || m["server"].str != "redis" || m["modules"].kind != Array {
			t.Fatalf("RESP%d HELLO decoded as %v %v", p, n.kind, m)
		}
	}
}
