package resp

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

type command struct {
	args   []string
	raw    string
	inline bool
}

// decodeCommands reads data to its end and returns the commands and the
// error that stopped the decoder (nil for a clean io.EOF).
func decodeCommands(data string, limits RequestLimits, preAuth bool, size int, oneByte bool) ([]command, error) {
	d := NewRequestDecoder(newReader(data, size, oneByte), limits)
	d.SetAuthenticated(!preAuth)
	var out []command
	for {
		args, raw, err := d.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		c := command{raw: string(raw), inline: d.Inline()}
		for _, a := range args {
			c.args = append(c.args, string(a))
		}
		out = append(out, c)
	}
}

func TestRequestDecoder(t *testing.T) {
	set := "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"
	cases := []struct {
		name string
		in   string
		want []command
	}{
		{"multibulk", set, []command{{[]string{"SET", "key", "value"}, set, false}}},
		{"pipeline", set + "*1\r\n$4\r\nPING\r\n", []command{
			{[]string{"SET", "key", "value"}, set, false},
			{[]string{"PING"}, "*1\r\n$4\r\nPING\r\n", false},
		}},
		{"empty and binary arguments", "*3\r\n$4\r\nECHO\r\n$0\r\n\r\n$4\r\na\r\nb\r\n", []command{
			{[]string{"ECHO", "", "a\r\nb"}, "*3\r\n$4\r\nECHO\r\n$0\r\n\r\n$4\r\na\r\nb\r\n", false},
		}},
		{"zero and negative counts are skipped", "*0\r\n*-1\r\n*-5\r\n*1\r\n$4\r\nPING\r\n", []command{
			{[]string{"PING"}, "*1\r\n$4\r\nPING\r\n", false},
		}},
		{"inline", "PING\r\n", []command{{[]string{"PING"}, "PING\r\n", true}}},
		{"inline bare newline", "PING\n", []command{{[]string{"PING"}, "PING\n", true}}},
		{"inline blank lines skipped", "\r\n\n  \t\r\nGET k\r\n", []command{{[]string{"GET", "k"}, "GET k\r\n", true}}},
		{"inline spaces", "  SET  a \t b  \r\n", []command{{[]string{"SET", "a", "b"}, "  SET  a \t b  \r\n", true}}},
		{"inline one CR stripped", "ECHO a\r\r\n", []command{{[]string{"ECHO", "a"}, "ECHO a\r\r\n", true}}},
		{"inline quotes", `SET "a b" 'c d'` + "\r\n", []command{{[]string{"SET", "a b", "c d"}, `SET "a b" 'c d'` + "\r\n", true}}},
		{"inline then multibulk", "PING\r\n*1\r\n$4\r\nPING\r\n", []command{
			{[]string{"PING"}, "PING\r\n", true},
			{[]string{"PING"}, "*1\r\n$4\r\nPING\r\n", false},
		}},
		{"dollar line is inline", "$3\r\n", []command{{[]string{"$3"}, "$3\r\n", true}}},
		{"empty input", "", nil},
	}
	for _, tc := range cases {
		for _, rs := range readerSetups {
			t.Run(tc.name+"/"+rs.name, func(t *testing.T) {
				got, err := decodeCommands(tc.in, RequestLimits{}, false, rs.size, rs.oneByte)
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("got %#v\nwant %#v", got, tc.want)
				}
			})
		}
	}
}

func TestRequestDecoderErrors(t *testing.T) {
	long := strings.Repeat("x", MaxInline+1)
	cases := []struct {
		name    string
		in      string
		limits  RequestLimits
		preAuth bool
		want    string // the ProtocolError's text; "" for io.ErrUnexpectedEOF
	}{
		{"count leading zero", "*01\r\n$4\r\nPING\r\n", RequestLimits{}, false, "Protocol error: invalid multibulk length"},
		{"count plus sign", "*+1\r\n$4\r\nPING\r\n", RequestLimits{}, false, "Protocol error: invalid multibulk length"},
		{"count minus zero", "*-0\r\n", RequestLimits{}, false, "Protocol error: invalid multibulk length"},
		{"count not a number", "*x\r\n", RequestLimits{}, false, "Protocol error: invalid multibulk length"},
		{"count empty", "*\r\n", RequestLimits{}, false, "Protocol error: invalid multibulk length"},
		{"count over limit", "*1048577\r\n", RequestLimits{}, false, "Protocol error: invalid multibulk length"},
		{"count bare LF", "*1\n$4\r\nPING\r\n", RequestLimits{}, false, "Protocol error: invalid multibulk length"},
		{"count stray CR", "*1\rx\r\n", RequestLimits{}, false, "Protocol error: invalid multibulk length"},
		{"count line too long", "*" + long, RequestLimits{}, false, "Protocol error: too big mbulk count string"},
		{"integer element", "*1\r\n:4\r\n", RequestLimits{}, false, "Protocol error: expected '$', got ':'"},
		{"empty element line", "*1\r\n\r\n", RequestLimits{}, false, "Protocol error: expected '$', got ' '"},
		{"non-ASCII element", "*1\r\n\xe9x\r\n", RequestLimits{}, false, "Protocol error: expected '$', got '\xe9'"},
		{"bulk leading zero", "*1\r\n$04\r\nPING\r\n", RequestLimits{}, false, "Protocol error: invalid bulk length"},
		{"bulk null", "*1\r\n$-1\r\n", RequestLimits{}, false, "Protocol error: invalid bulk length"},
		{"bulk over limit", "*1\r\n$11\r\nhello world\r\n", RequestLimits{MaxBulk: 10}, false, "Protocol error: invalid bulk length"},
		{"bulk count line too long", "*1\r\n$" + long, RequestLimits{}, false, "Protocol error: too big bulk count string"},
		{"bulk without CRLF", "*1\r\n$4\r\nPINGXY", RequestLimits{}, false, "Protocol error: expected CRLF after bulk argument"},
		{"command over limit", "*2\r\n$4\r\nECHO\r\n$10\r\n0123456789\r\n", RequestLimits{MaxCommand: 30}, false, "Protocol error: command exceeds the query buffer limit"},
		{"pre-auth count", "*11\r\n", RequestLimits{}, true, "Protocol error: unauthenticated multibulk length"},
		{"pre-auth bulk", "*1\r\n$16385\r\n", RequestLimits{}, true, "Protocol error: unauthenticated bulk length"},
		{"inline too big", long + "\r\n", RequestLimits{}, false, "Protocol error: too big inline request"},
		{"inline unbalanced", "ECHO \"abc\r\n", RequestLimits{}, false, "Protocol error: unbalanced quotes in request"},
		{"inline text after quote", "ECHO \"a\"b\r\n", RequestLimits{}, false, "Protocol error: unbalanced quotes in request"},
		{"inline NUL", "ECHO a\x00b\r\n", RequestLimits{}, false, "Protocol error: NUL byte in inline request"},
		{"truncated bulk", "*1\r\n$4\r\nPI", RequestLimits{}, false, ""},
		{"truncated count", "*1", RequestLimits{}, false, ""},
		{"inline without newline", "PING", RequestLimits{}, false, ""},
	}
	for _, tc := range cases {
		for _, rs := range readerSetups {
			t.Run(tc.name+"/"+rs.name, func(t *testing.T) {
				_, err := decodeCommands(tc.in, tc.limits, tc.preAuth, rs.size, rs.oneByte)
				if tc.want == "" {
					if !errors.Is(err, io.ErrUnexpectedEOF) {
						t.Fatalf("error %v, want io.ErrUnexpectedEOF", err)
					}
					return
				}
				var pe *ProtocolError
				if !errors.As(err, &pe) || pe.Msg != tc.want {
					t.Fatalf("error %q, want ProtocolError %q", err, tc.want)
				}
			})
		}
	}
}

// TestRequestLimitsRelaxed shows the pre-authentication limits apply only
// before SetAuthenticated(true) and that the limits cut exactly at the
// configured sizes.
func TestRequestLimitsRelaxed(t *testing.T) {
	eleven := AppendCommand(nil, "MSET", "a", "1", "b", "2", "c", "3", "d", "4", "e", "5")
	got, err := decodeCommands(string(eleven), RequestLimits{}, false, 4096, false)
	if err != nil || len(got) != 1 || len(got[0].args) != 11 {
		t.Fatalf("authenticated: %+v %v", got, err)
	}
	exact := "*1\r\n$10\r\n0123456789\r\n"
	if _, err := decodeCommands(exact, RequestLimits{MaxBulk: 10, MaxCommand: int64(len(exact))}, false, 16, true); err != nil {
		t.Fatalf("a command exactly at the limits: %v", err)
	}
}

// TestRequestErrorsAreSticky checks a protocol error is final, while an
// error before any byte of a command (an idle read deadline) is not.
func TestRequestErrorsAreSticky(t *testing.T) {
	d := NewRequestDecoder(newReader("*x\r\n*1\r\n$4\r\nPING\r\n", 64, false), RequestLimits{})
	_, _, err1 := d.Next()
	_, _, err2 := d.Next()
	if !IsProtocolError(err1) || err1 != err2 {
		t.Fatalf("errors %v then %v", err1, err2)
	}

	src := &scriptedReader{steps: []step{{err: errDeadline}, {data: "PING\r\n"}}}
	d = NewRequestDecoder(bufio.NewReaderSize(src, 64), RequestLimits{})
	if _, _, err := d.Next(); !errors.Is(err, errDeadline) {
		t.Fatalf("first call: %v", err)
	}
	args, _, err := d.Next()
	if err != nil || len(args) != 1 || string(args[0]) != "PING" {
		t.Fatalf("after the deadline: %q %v", args, err)
	}
}

var errDeadline = errors.New("i/o timeout")

type step struct {
	data string
	err  error
}

// scriptedReader returns its steps one per Read.
type scriptedReader struct{ steps []step }

func (r *scriptedReader) Read(p []byte) (int, error) {
	if len(r.steps) == 0 {
		return 0, io.EOF
	}
	s := r.steps[0]
	r.steps = r.steps[1:]
	return copy(p, s.data), s.err
}

// TestRequestArgsDoNotAlias checks that appending to one argument cannot
// overwrite the next: every argument is capped at its own length.
func TestRequestArgsDoNotAlias(t *testing.T) {
	for _, in := range []string{"*2\r\n$1\r\na\r\n$1\r\nb\r\n", "a b\r\n"} {
		d := NewRequestDecoder(newReader(in, 64, false), RequestLimits{})
		args, raw, err := d.Next()
		if err != nil {
			t.Fatal(err)
		}
		_ = append(args[0], 'X')
		_ = append(raw, 'X')
		if string(args[1]) != "b" {
			t.Fatalf("%q: second argument became %q", in, args[1])
		}
	}
}
