package resp

import (
	"reflect"
	"testing"
)

// splitCases follow sdssplitargs in redis/src/sds.c. The valid ones are also
// sent to the real Redis by TestInlineSplitMatchesRedis.
var splitCases = []struct {
	name string
	line string
	want []string // nil with ok false: unbalanced quotes
	ok   bool
}{
	{"words", "SET key value", []string{"SET", "key", "value"}, true},
	{"runs of blanks", " \t SET\t\tkey   value \t", []string{"SET", "key", "value"}, true},
	{"blank line", " \t ", nil, true},
	{"double quotes", `SET "a key" "a value"`, []string{"SET", "a key", "a value"}, true},
	{"single quotes", `SET 'a key' 'it''`, nil, false},
	{"single quote escape", `SET k 'it\'s'`, []string{"SET", "k", "it's"}, true},
	{"single quotes keep backslashes", `SET k 'a\nb\\ c'`, []string{"SET", "k", `a\nb\\ c`}, true},
	{"single quotes: a second backslash escapes the quote", `SET k 'a\\'`, nil, false},
	{"C escapes", `SET k "\n\r\t\b\a\\\""`, []string{"SET", "k", "\n\r\t\b\a\\\""}, true},
	{"hex escape", `SET k "\x41\x6a\xff\x00"`, []string{"SET", "k", "Aj\xff\x00"}, true},
	{"short hex escape", `SET k "\x4g"`, []string{"SET", "k", "x4g"}, true},
	{"unknown escape stands for itself", `SET k "\q\'"`, []string{"SET", "k", "q'"}, true},
	{"empty quotes", `SET k ""`, []string{"SET", "k", ""}, true},
	{"empty single quotes", `SET k ''`, []string{"SET", "k", ""}, true},
	{"quote opens inside a word", `SET k a"b c"d`, nil, false},
	{"quote opens inside a word and closes at a blank", `SET k a"b c"`, []string{"SET", "k", "ab c"}, true},
	{"vertical tab kept inside a word", "SET k a\vb", []string{"SET", "k", "a\vb"}, true},
	{"form feed skipped between words", "SET k\f v", []string{"SET", "k\f", "v"}, true},
	{"leading vertical tab skipped", "SET \vk v", []string{"SET", "k", "v"}, true},
	{"quoted then blank", `SET "k"` + "\t" + `v`, []string{"SET", "k", "v"}, true},
	{"closing quote glued to a word", `SET "k"v`, nil, false},
	{"closing single quote glued to a word", `SET 'k'v`, nil, false},
	{"unterminated double quote", `SET "k v`, nil, false},
	{"unterminated single quote", `SET 'k v`, nil, false},
	{"backslash before the end of a quote", `SET "k\`, nil, false},
	{"escaped closing quote", `SET "k\"`, nil, false},
	{"single quote inside double", `SET "it's"`, []string{"SET", "it's"}, true},
	{"double quote inside single", `SET 'say "hi"'`, []string{"SET", `say "hi"`}, true},
	{"CR inside the line ends a word", "SET k\rv", []string{"SET", "k", "v"}, true},
}

func TestSplit(t *testing.T) {
	for _, tc := range splitCases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := splitLine(tc.line)
			if ok != tc.ok || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("split(%q) = %q, %v; want %q, %v", tc.line, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// splitLine splits line with the request decoder's splitter.
func splitLine(line string) ([]string, bool) {
	s := splitter{line: []byte(line)}
	spans, ok := s.split(nil)
	if !ok {
		return nil, false
	}
	var out []string
	for _, sp := range spans {
		out = append(out, string(s.out[sp.start:sp.end]))
	}
	return out, true
}

// quoteInline writes args as an inline line that splits back into them,
// every byte outside [A-Za-z0-9] written as \xHH inside double quotes.
func quoteInline(args [][]byte) []byte {
	const hex = "0123456789abcdef"
	var out []byte
	for i, a := range args {
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, '"')
		for _, c := range a {
			if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
				out = append(out, c)
				continue
			}
			out = append(out, '\\', 'x', hex[c>>4], hex[c&15])
		}
		out = append(out, '"')
	}
	return out
}
