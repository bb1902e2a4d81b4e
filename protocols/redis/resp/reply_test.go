package resp

import (
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
)

// replyCases are valid replies of every type, RESP2 and RESP3, with the
// tokens they decode to (see describe).
var replyCases = []struct {
	name string
	in   string
	want []string
}{
	{"simple string", "+OK\r\n", []string{"+OK C"}},
	{"empty simple string", "+\r\n", []string{"+ C"}},
	{"simple error", "-ERR unknown command 'x'\r\n", []string{"-ERR unknown command 'x' C"}},
	{"integer", ":1000\r\n", []string{":1000 C"}},
	{"negative integer", ":-42\r\n", []string{":-42 C"}},
	{"signed integer", ":+7\r\n", []string{":+7 C"}},
	{"integer extremes", ":-9223372036854775808\r\n:9223372036854775807\r\n", []string{":-9223372036854775808 C", ":9223372036854775807 C"}},
	{"bulk string", "$5\r\nhello\r\n", []string{"$hello C"}},
	{"binary bulk string", "$4\r\na\r\nb\r\n", []string{"$a\r\nb C"}},
	{"empty bulk string", "$0\r\n\r\n", []string{"$ C"}},
	{"null bulk string", "$-1\r\n", []string{"$-1 C"}},
	{"array", "*2\r\n$3\r\nfoo\r\n:1\r\n", []string{"*2", "$foo", ":1 C"}},
	{"empty array", "*0\r\n", []string{"*0 C"}},
	{"null array", "*-1\r\n", []string{"*-1 C"}},
	{"nested arrays", "*2\r\n*2\r\n:1\r\n:2\r\n*1\r\n+a\r\n", []string{"*2", "*2", ":1", ":2", "*1", "+a C"}},
	{"array with null elements", "*3\r\n$-1\r\n*-1\r\n_\r\n", []string{"*3", "$-1", "*-1", "_ C"}},
	{"null", "_\r\n", []string{"_ C"}},
	{"booleans", "#t\r\n#f\r\n", []string{"#t C", "#f C"}},
	{"doubles", ",1.5\r\n,-0.25e-3\r\n,10\r\n,1E+300\r\n", []string{",1.5 C", ",-0.25e-3 C", ",10 C", ",1E+300 C"}},
	{"double specials", ",inf\r\n,-inf\r\n,nan\r\n", []string{",inf C", ",-inf C", ",nan C"}},
	{"big number", "(3492890328409238509324850943850943825024385\r\n", []string{"(3492890328409238509324850943850943825024385 C"}},
	{"negative big number", "(-1\r\n", []string{"(-1 C"}},
	{"bulk error", "!21\r\nSYNTAX invalid syntax\r\n", []string{"!SYNTAX invalid syntax C"}},
	{"verbatim string", "=15\r\ntxt:Some string\r\n", []string{"=txt:Some string C"}},
	{"empty verbatim string", "=4\r\nmkd:\r\n", []string{"=mkd: C"}},
	{"map", "%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n", []string{"%2", "+first", ":1", "+second", ":2 C"}},
	{"empty map", "%0\r\n", []string{"%0 C"}},
	{"set", "~2\r\n+a\r\n+b\r\n", []string{"~2", "+a", "+b C"}},
	{"push", ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n", []string{">3 P", "$message P", "$ch P", "$hi P C"}},
	{"push then reply", ">2\r\n+invalidate\r\n*1\r\n$1\r\nk\r\n+OK\r\n", []string{">2 P", "+invalidate P", "*1 P", "$k P C", "+OK C"}},
	{"attribute before a reply", "|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n",
		[]string{"|1 A", "+key-popularity A", "%2 A", "$a A", ",0.1923 A", "$b A", ",0.0012 A", "*2", ":2039123", ":9543892 C"}},
	{"attribute inside an array", "*3\r\n:1\r\n:2\r\n|1\r\n+ttl\r\n:3600\r\n:3\r\n",
		[]string{"*3", ":1", ":2", "|1 A", "+ttl A", ":3600 A", ":3 C"}},
	{"attribute as last element's annotation", "*1\r\n|1\r\n+a\r\n+b\r\n:1\r\n", []string{"*1", "|1 A", "+a A", "+b A", ":1 C"}},
	{"empty attribute", "|0\r\n+OK\r\n", []string{"|0 A", "+OK C"}},
	{"attribute before a push", "|1\r\n+a\r\n+b\r\n>1\r\n+x\r\n", []string{"|1 A", "+a A", "+b A", ">1 P", "+x P C"}},
	{"nested push is an aggregate", "*1\r\n>1\r\n:1\r\n", []string{"*1", ">1", ":1 C"}},
	{"map of aggregates", "%1\r\n*1\r\n:1\r\n~1\r\n#t\r\n", []string{"%1", "*1", ":1", "~1", "#t C"}},
}

func TestReplyDecoder(t *testing.T) {
	for _, tc := range replyCases {
		for _, rs := range readerSetups {
			t.Run(tc.name+"/"+rs.name, func(t *testing.T) {
				toks, err := decodeReplies(tc.in, ReplyOptions{}, rs.size, rs.oneByte)
				if err != nil {
					t.Fatalf("error %v", err)
				}
				var got []string
				for _, tok := range toks {
					got = append(got, describe(tok))
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("got  %q\nwant %q", got, tc.want)
				}
				checkRoundTrip(t, tc.in, toks)
			})
		}
	}
}

// checkRoundTrip asserts that the tokens' raw bytes, and the tokens
// re-encoded with their own payloads, both reproduce the input.
func checkRoundTrip(t *testing.T, in string, toks []Token) {
	t.Helper()
	var raw, again []byte
	for _, tok := range toks {
		raw = append(raw, tok.Raw...)
		var err error
		if again, err = AppendToken(again, tok, tok.Payload); err != nil {
			t.Fatalf("re-encode %s: %v", describe(tok), err)
		}
	}
	if string(raw) != in {
		t.Fatalf("raw bytes %q, input %q", raw, in)
	}
	if string(again) != in {
		t.Fatalf("re-encoded %q, input %q", again, in)
	}
}

func TestReplyDepthAndFlags(t *testing.T) {
	in := "|1\r\n+a\r\n*1\r\n:1\r\n*2\r\n*1\r\n$1\r\nx\r\n:2\r\n"
	d := NewReplyDecoder(newReader(in, 64, false), ReplyOptions{})
	wantDepth := []int{0, 1, 1, 2, 0, 1, 2, 1} // token depths
	wantAfter := []int{1, 1, 2, 1, 1, 2, 1, 0} // Depth() after each token; the attribute awaits its value
	for i := range wantDepth {
		tok, err := d.Next()
		if err != nil {
			t.Fatal(err)
		}
		if tok.Depth != wantDepth[i] || d.Depth() != wantAfter[i] {
			t.Fatalf("token %d (%s): depth %d, Depth() %d; want %d, %d", i, describe(tok), tok.Depth, d.Depth(), wantDepth[i], wantAfter[i])
		}
	}
}

func TestReplyErrors(t *testing.T) {
	cases := []struct {
		name string
		in   string
		opts ReplyOptions
		want string // substring of the ProtocolError; "" for io.ErrUnexpectedEOF
	}{
		{"unknown type", "?x\r\n", ReplyOptions{}, "unknown reply type '?'"},
		{"lone LF", "+OK\n", ReplyOptions{}, "does not end in CRLF"},
		{"CR inside a line", "+O\rK\r\n", ReplyOptions{}, "does not end in CRLF"},
		{"integer with letters", ":12a\r\n", ReplyOptions{}, "invalid integer"},
		{"integer empty", ":\r\n", ReplyOptions{}, "invalid integer"},
		{"integer overflow", ":9223372036854775808\r\n", ReplyOptions{}, "invalid integer"},
		{"bulk length not a number", "$x\r\n", ReplyOptions{}, "invalid bulk string length"},
		{"bulk length leading zero", "$05\r\nhello\r\n", ReplyOptions{}, "invalid bulk string length"},
		{"bulk length -2", "$-2\r\n", ReplyOptions{}, "invalid bulk string length"},
		{"bulk length huge", "$9999999999999999999\r\n", ReplyOptions{}, "invalid bulk string length"},
		{"bulk without CRLF", "$3\r\nfooXY", ReplyOptions{}, "expected CRLF after bulk string"},
		{"streamed bulk without CRLF", "$6\r\nfoobarXY", ReplyOptions{ChunkSize: 2}, "expected CRLF after bulk string"},
		{"null bulk error", "!-1\r\n", ReplyOptions{}, "invalid bulk error length"},
		{"null map", "%-1\r\n", ReplyOptions{}, "invalid map length"},
		{"array length -2", "*-2\r\n", ReplyOptions{}, "invalid array length"},
		{"verbatim too short", "=3\r\ntxt\r\n", ReplyOptions{}, "invalid verbatim string length"},
		{"verbatim without format", "=5\r\nhello\r\n", ReplyOptions{}, "without a format prefix"},
		{"streamed verbatim without format", "=9\r\nhelloxxxx\r\n", ReplyOptions{ChunkSize: 4}, "without a format prefix"},
		{"null with payload", "_x\r\n", ReplyOptions{}, "invalid null"},
		{"boolean other", "#x\r\n", ReplyOptions{}, "invalid boolean"},
		{"double dot only", ",1.\r\n", ReplyOptions{}, "invalid double"},
		{"double words", ",infinity\r\n", ReplyOptions{}, "invalid double"},
		{"double leading dot", ",.5\r\n", ReplyOptions{}, "invalid double"},
		{"big number letters", "(12x\r\n", ReplyOptions{}, "invalid big number"},
		{"too deep", strings.Repeat("*1\r\n", 6) + ":1\r\n", ReplyOptions{MaxDepth: 5}, "nested deeper than 5"},
		{"line too long", "+" + strings.Repeat("x", 100) + "\r\n", ReplyOptions{MaxLine: 50}, "longer than 50 bytes"},
		{"line too long without end", "+" + strings.Repeat("x", 100), ReplyOptions{MaxLine: 50}, "longer than 50 bytes"},
		{"truncated line", "+OK", ReplyOptions{}, ""},
		{"truncated bulk", "$5\r\nhel", ReplyOptions{}, ""},
		{"truncated streamed bulk", "$10\r\nhel", ReplyOptions{ChunkSize: 2}, ""},
		{"truncated array", "*2\r\n:1\r\n", ReplyOptions{}, ""},
		{"attribute without its value", "|1\r\n+a\r\n+b\r\n", ReplyOptions{}, ""},
	}
	for _, tc := range cases {
		for _, rs := range readerSetups {
			t.Run(tc.name+"/"+rs.name, func(t *testing.T) {
				_, err := decodeReplies(tc.in, tc.opts, rs.size, rs.oneByte)
				if tc.want == "" {
					if !errors.Is(err, io.ErrUnexpectedEOF) {
						t.Fatalf("error %v, want io.ErrUnexpectedEOF", err)
					}
					return
				}
				var pe *ProtocolError
				if !errors.As(err, &pe) || !strings.Contains(pe.Msg, tc.want) {
					t.Fatalf("error %v, want a ProtocolError with %q", err, tc.want)
				}
			})
		}
	}
}

func TestReplyStreamsLongBulks(t *testing.T) {
	cases := []struct {
		name   string
		in     string
		begin  string // describe() of the begin token
		joined string // the chunks' payloads
	}{
		{"bulk string", "$10\r\n0123456789\r\n", "$<10", "0123456789"},
		{"bulk error", "!9\r\nERR x\r\nyz\r\n", "!<9", "ERR x\r\nyz"},
		{"verbatim string", "=10\r\ntxt:abcdef\r\n", "=<10:txt", "abcdef"},
	}
	for _, tc := range cases {
		for _, rs := range readerSetups {
			t.Run(tc.name+"/"+rs.name, func(t *testing.T) {
				toks, err := decodeReplies("*1\r\n"+tc.in, ReplyOptions{ChunkSize: 4}, rs.size, rs.oneByte)
				if err != nil {
					t.Fatal(err)
				}
				if len(toks) < 4 || describe(toks[1]) != tc.begin {
					t.Fatalf("tokens %v", toks)
				}
				var joined string
				for _, tok := range toks[2 : len(toks)-1] {
					if tok.Part != PartChunk || len(tok.Payload) == 0 || len(tok.Payload) > 4 || tok.Complete {
						t.Fatalf("chunk %s", describe(tok))
					}
					joined += string(tok.Payload)
				}
				last := toks[len(toks)-1]
				if joined != tc.joined || last.Part != PartEnd || !last.Complete {
					t.Fatalf("chunks %q, last %s", joined, describe(last))
				}
				checkRoundTrip(t, "*1\r\n"+tc.in, toks)
			})
		}
	}
	// At the chunk size exactly, a value still comes whole.
	toks, err := decodeReplies("$4\r\nabcd\r\n", ReplyOptions{ChunkSize: 4}, 16, true)
	if err != nil || len(toks) != 1 || describe(toks[0]) != "$abcd C" {
		t.Fatalf("at chunk size: %v %v", toks, err)
	}
}

// TestReplyErrorsAreSticky checks that a protocol error is final while an
// idle read error between replies is not.
func TestReplyErrorsAreSticky(t *testing.T) {
	d := NewReplyDecoder(newReader("*1\r\n?\r\n+OK\r\n", 64, false), ReplyOptions{})
	_, _ = d.Next()
	_, err1 := d.Next()
	_, err2 := d.Next()
	if !IsProtocolError(err1) || err1 != err2 {
		t.Fatalf("errors %v then %v", err1, err2)
	}

	src := &scriptedReader{steps: []step{{err: errDeadline}, {data: "+OK\r\n"}}}
	d = NewReplyDecoder(newBufReader(src), ReplyOptions{})
	if _, err := d.Next(); !errors.Is(err, errDeadline) {
		t.Fatalf("first call: %v", err)
	}
	if tok, err := d.Next(); err != nil || describe(tok) != "+OK C" {
		t.Fatalf("after the deadline: %v %v", tok, err)
	}
}

func TestTokenValues(t *testing.T) {
	toks, err := decodeReplies(":-12\r\n#t\r\n#f\r\n,2.5\r\n,-inf\r\n,nan\r\n", ReplyOptions{}, 64, false)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := toks[0].Int(); n != -12 || err != nil {
		t.Errorf("Int %d %v", n, err)
	}
	if !toks[1].Bool() || toks[2].Bool() {
		t.Errorf("Bool")
	}
	if f, err := toks[3].Float(); f != 2.5 || err != nil {
		t.Errorf("Float %v %v", f, err)
	}
	if f, err := toks[4].Float(); !math.IsInf(f, -1) || err != nil {
		t.Errorf("Float -inf %v %v", f, err)
	}
	if f, err := toks[5].Float(); !math.IsNaN(f) || err != nil {
		t.Errorf("Float nan %v %v", f, err)
	}
	if !(Token{Kind: BulkString, Len: -1}).IsNull() || !(Token{Kind: Null}).IsNull() || (Token{Kind: Array}).IsNull() {
		t.Errorf("IsNull")
	}
}
