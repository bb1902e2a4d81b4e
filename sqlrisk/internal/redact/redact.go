// Package redact replaces secret literals in command text. The analyzers
// find the literals with their own scanners (token positions, never a regular
// expression over the raw command); this package only splices the text and
// judges a single literal's content.
package redact

import (
	"regexp"
	"sort"
	"strings"
)

// Mask replaces a secret SQL string literal.
const Mask = "'***'"

// Span is a byte range [Start, End) of the command text.
type Span struct{ Start, End int }

// Apply returns text with every span replaced by mask. Spans may be given in
// any order; overlapping or out-of-range spans are merged or clipped, so a
// scanner's quirk can never leak the tail of a literal.
func Apply(text string, spans []Span, mask string) string {
	if len(spans) == 0 {
		return text
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].Start < spans[j].Start })
	// Merge overlapping spans so that each secret is one mask.
	merged := make([]Span, 0, len(spans))
	for _, s := range spans {
		s.Start, s.End = max(s.Start, 0), min(s.End, len(text))
		if s.Start >= s.End {
			continue
		}
		if n := len(merged); n > 0 && s.Start < merged[n-1].End {
			merged[n-1].End = max(merged[n-1].End, s.End)
			continue
		}
		merged = append(merged, s)
	}
	var b strings.Builder
	b.Grow(len(text))
	pos := 0
	for _, s := range merged {
		b.WriteString(text[pos:s.Start])
		b.WriteString(mask)
		pos = s.End
	}
	b.WriteString(text[pos:])
	return b.String()
}

// secretContent matches literal contents that carry a credential: libpq and
// ODBC style key=value connection strings, URIs with a password, JSON
// password members.
var secretContent = regexp.MustCompile(`(?i)(pass(word|wd)?|pwd|secret)\s*=|[a-z][a-z0-9+.-]*://[^/@\s]*:[^/@\s]*@|"pass(word|wd)?"\s*:`)

// SecretLiteral reports whether the content of a string literal carries a
// credential wherever it appears (a dblink connection string, a
// subscription's CONNECTION, a JSON document with a password member).
func SecretLiteral(content string) bool {
	return mayHoldSecret(content) && secretContent.MatchString(content)
}

// mayHoldSecret is a quick pass that rules out what secretContent cannot
// match: every match starts with "pass", "pwd" or "secret" (any case), or
// is a URI with "://" and an '@'. One look at each byte is some fifty times
// cheaper than the case-insensitive regular expression, which a large
// literal (a 16 MB blob) would otherwise spend a second and more on.
func mayHoldSecret(s string) bool {
	uri := false
	at := strings.IndexByte(s, '@') >= 0
	for i := 0; i < len(s); i++ {
		switch s[i] | 0x20 {
		case 'p':
			if hasFold(s[i:], "pass") || hasFold(s[i:], "pwd") {
				return true
			}
		case 's':
			if hasFold(s[i:], "secret") {
				return true
			}
		case ':' | 0x20: // ':' is 0x3a, unchanged by the case bit
			uri = uri || strings.HasPrefix(s[i:], "://")
		}
		if uri && at {
			return true
		}
	}
	return false
}

// hasFold reports whether s starts with the lower-case ASCII word w, in
// any case.
func hasFold(s, w string) bool {
	if len(s) < len(w) {
		return false
	}
	for j := 0; j < len(w); j++ {
		if s[j]|0x20 != w[j] {
			return false
		}
	}
	return true
}
