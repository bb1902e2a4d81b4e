package approvals

import (
	"fmt"
	"strings"
	"unicode"
)

// Visible returns s with every character that could hide or rewrite what a
// reviewer reads made visible as \u{XXXX}: control characters (other than
// newline and tab), bidirectional overrides and isolates ("Trojan Source"),
// zero-width and other format characters. Commands are attacker-controlled
// text; a reviewer must see exactly what runs.
func Visible(s string) string {
	if !strings.ContainsFunc(s, hidden) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for _, r := range s {
		if hidden(r) {
			fmt.Fprintf(&b, `\u{%04X}`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// HasHidden reports whether Visible would change s.
func HasHidden(s string) bool { return strings.ContainsFunc(s, hidden) }

func hidden(r rune) bool {
	switch {
	case r == '\n' || r == '\t':
		return false
	case r == unicode.ReplacementChar:
		return true // invalid UTF-8 decodes to it
	case unicode.IsControl(r):
		return true
	case unicode.Is(unicode.Cf, r): // bidi controls, zero-width, BOM, tags
		return true
	case unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r):
		return true
	}
	return false
}

// oneLine renders s on a single line for tables: newlines and tabs become
// spaces and the result is cut to n runes.
func oneLine(s string, n int) string {
	s = Visible(s)
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
