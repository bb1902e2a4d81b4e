package resp

import (
	"bufio"
	"context"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols/testenv"
)

// serveFake answers the commands of one connection with values written by
// the encoder, as the gateway answers what it handles itself, and records
// the argument vectors it decoded.
func serveFake(t *testing.T, ln net.Listener, got chan<- []string) {
	defer close(got)
	conn, err := ln.Accept()
	if err != nil {
		return
	}
	defer conn.Close()
	d := NewRequestDecoder(bufio.NewReader(conn), RequestLimits{})
	proto := RESP2
	for {
		args, _, err := d.Next()
		if err != nil {
			return
		}
		var words []string
		for _, a := range args {
			words = append(words, string(a))
		}
		got <- words
		if strings.EqualFold(words[0], "HELLO") && len(words) > 1 && words[1] == "3" {
			proto = RESP3
		}
		if _, err := conn.Write(fakeReply(words, proto)); err != nil {
			t.Errorf("write reply: %v", err)
			return
		}
	}
}

func fakeReply(args []string, p Proto) []byte {
	switch strings.ToUpper(args[0]) {
	case "HELLO":
		return helloReply(nil, p)
	case "ECHO":
		return AppendBulkString(nil, args[1])
	case "DOUBLE":
		return AppendDouble(nil, 1.5, p)
	case "BOOL":
		return AppendBool(nil, true, p)
	case "NULL":
		return AppendNull(nil, p)
	case "BIG": // redis-cli 7.0 prints no big numbers, so only in RESP2
		return AppendBigNumber(nil, "12345678901234567890", p)
	case "VERBATIM":
		return AppendVerbatim(nil, "txt", "line one", p)
	case "MAP":
		dst := AppendMapHeader(nil, 1, p)
		return AppendInt(AppendBulkString(dst, "field"), 7)
	case "SET":
		dst := AppendSetHeader(nil, 2, p)
		return AppendSimple(AppendSimple(dst, "x"), "y")
	case "PUSH":
		// In RESP3 a push message may precede the reply it does not belong
		// to; in RESP2 it is an array and the reply itself.
		dst := AppendPushHeader(nil, 2, p)
		dst = AppendBulkString(AppendBulkString(dst, "message"), "hi")
		if p == RESP3 {
			dst = AppendSimple(dst, "after the push")
		}
		return dst
	}
	return AppendError(nil, "ERR refused by policy")
}

// TestRedisCliReadsEncoder drives redis-cli (hiredis) against a fake server
// that answers with the encoder: redis-cli must print each value as the
// type it is, in RESP2 and RESP3, and the request decoder must read the
// commands redis-cli sends.
func TestRedisCliReadsEncoder(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		if testenv.InCI() {
			t.Fatal("redis-cli is not installed")
		}
		t.Skip("redis-cli is not installed")
	}
	input := "ECHO \"a b\\x41\"\nDOUBLE\nBOOL\nNULL\nVERBATIM\nMAP\nSET\nPUSH\nNOPE\n"
	cases := []struct {
		flag  string
		input string
		want  []string
	}{
		{"-2", input + "BIG\n", []string{`"a bA"`, `"1.5"`, `(integer) 1`, `(nil)`, `"line one"`,
			`1) "field"`, `2) (integer) 7`, `1) x`, `2) y`, `1) "message"`, `2) "hi"`, `(error) ERR refused by policy`,
			`"12345678901234567890"`}},
		// redis-cli prints a verbatim string bare and, when not on a
		// terminal, drops push messages: "after the push" is the reply.
		{"-3", input, []string{`"a bA"`, `(double) 1.5`, `(true)`, `(nil)`, `line one`,
			`1# "field" => (integer) 7`, `1~ x`, `2~ y`, `after the push`, `(error) ERR refused by policy`}},
	}
	for _, tc := range cases {
		t.Run(tc.flag, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			got := make(chan []string, 64)
			go serveFake(t, ln, got)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			port := ln.Addr().(*net.TCPAddr).Port
			cmd := exec.CommandContext(ctx, cli, "-h", "127.0.0.1", "-p", strconv.Itoa(port), tc.flag, "--no-raw")
			cmd.Stdin = strings.NewReader(tc.input)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("redis-cli: %v\n%s", err, out)
			}
			var lines []string
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				lines = append(lines, strings.TrimSpace(l))
			}
			if strings.Join(lines, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("redis-cli printed\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(tc.want, "\n"))
			}
			var first []string
			for words := range got {
				// redis-cli starts with HELLO and COMMAND DOCS of its own.
				if first == nil && !strings.EqualFold(words[0], "HELLO") && !strings.EqualFold(words[0], "COMMAND") {
					first = words
				}
			}
			if strings.Join(first, "|") != "ECHO|a bA" {
				t.Fatalf("decoded first command %q", first)
			}
		})
	}
}
