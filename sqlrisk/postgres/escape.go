package postgres

import "strings"

// escapeStringVariant rewrites text so that pg_query, which always parses
// with standard_conforming_strings on, reads it as a server with the
// setting off would: every plain '…' (and N'…') literal becomes an E'…'
// literal. ok is false when no plain literal contains a backslash, since
// both readings are then identical.
//
// This is a small hand-written scanner because pg_query's scanner knows only
// the standard reading, and rewriting literal by literal with it would cost
// one full scan per literal. It tracks only what decides where a literal
// ends: comments (-- and nested /* */), dollar quotes, quoted identifiers,
// and the string literal forms; it never decides risk by itself.
func escapeStringVariant(text string) (string, bool) {
	if strings.IndexByte(text, '\\') < 0 {
		return "", false
	}
	var b strings.Builder
	b.Grow(len(text) + 16)
	changed := false
	i, last := 0, 0
	for i < len(text) {
		c := text[i]
		switch {
		case c == '-' && i+1 < len(text) && text[i+1] == '-':
			for i < len(text) && text[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(text) && text[i+1] == '*':
			depth := 0
			for i < len(text) {
				if text[i] == '/' && i+1 < len(text) && text[i+1] == '*' {
					depth++
					i += 2
					continue
				}
				if text[i] == '*' && i+1 < len(text) && text[i+1] == '/' {
					depth--
					i += 2
					if depth == 0 {
						break
					}
					continue
				}
				i++
			}
		case c == '"':
			i = pgQuoted(text, i+1, '"', false)
		case c == '$':
			if tag, ok := dollarTag(text, i); ok {
				end := strings.Index(text[i+len(tag):], tag)
				if end < 0 {
					i = len(text)
				} else {
					i += len(tag) + end + len(tag)
				}
			} else {
				i++
			}
		case c == '\'':
			// A plain literal: the server with the setting off reads it
			// with backslash escapes, as E'…'.
			end := pgQuoted(text, i+1, '\'', true)
			if strings.IndexByte(text[i:end], '\\') >= 0 {
				changed = true
			}
			b.WriteString(text[last:i])
			b.WriteByte('E')
			last = i
			i = end
		case isIdentStart(c):
			j := i + 1
			for j < len(text) && isIdentCont(text[j]) {
				j++
			}
			word := text[i:j]
			switch {
			case j < len(text) && text[j] == '\'' && (word == "E" || word == "e"):
				i = pgQuoted(text, j+1, '\'', true)
			case j < len(text) && text[j] == '\'' && (word == "N" || word == "n"):
				end := pgQuoted(text, j+1, '\'', true)
				if strings.IndexByte(text[j:end], '\\') >= 0 {
					changed = true
				}
				b.WriteString(text[last:i])
				b.WriteByte('E')
				last = j
				i = end
			case j < len(text) && text[j] == '\'' && (word == "B" || word == "b" || word == "X" || word == "x"):
				i = pgQuoted(text, j+1, '\'', false)
			case j+1 < len(text) && text[j] == '&' && (word == "U" || word == "u") && (text[j+1] == '\'' || text[j+1] == '"'):
				i = pgQuoted(text, j+2, text[j+1], false)
			default:
				i = j
			}
		default:
			i++
		}
	}
	if !changed {
		return "", false
	}
	b.WriteString(text[last:])
	return b.String(), true
}

// pgQuoted returns the offset after the literal whose body starts at i and
// ends with q; a doubled q stands for itself, and with escapes a backslash
// escapes the next byte. An unterminated literal runs to the end.
func pgQuoted(text string, i int, q byte, escapes bool) int {
	for i < len(text) {
		switch c := text[i]; {
		case c == '\\' && escapes:
			i += 2
		case c == q:
			if i+1 < len(text) && text[i+1] == q {
				i += 2
				continue
			}
			return i + 1
		default:
			i++
		}
	}
	return len(text)
}

// dollarTag returns the $tag$ delimiter starting at i, if one does.
func dollarTag(text string, i int) (string, bool) {
	j := i + 1
	if j < len(text) && text[j] == '$' {
		return "$$", true
	}
	if j >= len(text) || !isIdentStart(text[j]) {
		return "", false
	}
	for j < len(text) && isIdentStart(text[j]) || (j < len(text) && text[j] >= '0' && text[j] <= '9') {
		j++
	}
	if j < len(text) && text[j] == '$' {
		return text[i : j+1], true
	}
	return "", false
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentCont(c byte) bool {
	return isIdentStart(c) || c == '$' || (c >= '0' && c <= '9')
}
