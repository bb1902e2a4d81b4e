package recording

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/width"
)

// esc makes recorded text safe to print on a terminal: control characters
// (escape sequences, carriage returns, newlines) and invalid UTF-8 become
// visible escapes, so replaying a recording cannot rewrite the screen of the
// auditor reading it.
func esc(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) && r != ' ' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatUint(uint64(s[i])|0x100, 16)[1:])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == ' ' || unicode.IsPrint(r):
			b.WriteString(s[i : i+n])
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}

// escMultiline escapes each line of s and continues it on the next line
// behind prefix, so multi-line statements stay readable.
func escMultiline(s, prefix string) string {
	s = strings.TrimRight(s, "\n")
	if !strings.Contains(s, "\n") {
		return esc(s)
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = esc(strings.TrimSuffix(l, "\r"))
	}
	return strings.Join(lines, "\n"+prefix)
}

// runeWidth is a rune's width in terminal cells: two for East Asian wide
// and fullwidth runes, zero for combining marks, else one.
func runeWidth(r rune) int {
	if unicode.Is(unicode.Mn, r) {
		return 0
	}
	switch width.LookupRune(r).Kind() {
	case width.EastAsianWide, width.EastAsianFullwidth:
		return 2
	}
	return 1
}

func displayWidth(s string) int {
	n := 0
	for _, r := range s {
		n += runeWidth(r)
	}
	return n
}

// truncateWidth returns the longest prefix of s at most w cells wide.
func truncateWidth(s string, w int) string {
	n := 0
	for i, r := range s {
		rw := runeWidth(r)
		if n+rw > w {
			return s[:i]
		}
		n += rw
	}
	return s
}
