package masking

import (
	"unicode/utf16"
	"unicode/utf8"
)

// JSON masking walks the document's tokens by hand rather than decoding it:
// encoding/json would allocate a tree per value and re-encode everything,
// while masking must splice a few replacements into otherwise untouched
// bytes at wire speed. Only string and number tokens change, and they are
// replaced by JSON strings or null, so a valid document stays valid.
// Nesting needs no stack: a string is an object key exactly when the next
// non-space byte is ':'.

// maskJSON appends src with entities inside its strings and numbers masked.
// A key naming a credential (password, api_key, …) makes its scalar value a
// credential when credValue agrees. A null strategy turns a value into
// JSON null; keys are redacted instead. It returns Kept (dst unchanged),
// Replaced, or Malformed when src is not JSON.
func (w *worker) maskJSON(dst, src []byte) ([]byte, Outcome) {
	start := len(dst)
	pos := 0
	changed := false
	credOn := w.e.det.on[entCredential] || w.e.det.on[entAWSSecret]
	cred, aws := credNone, false
	n := len(src)
	for i := 0; i < n; {
		c := src[i]
		switch {
		case c == '"':
			end, esc := jsonStringEnd(src, i)
			if end < 0 {
				return dst[:start], Malformed
			}
			text := src[i+1 : end-1]
			if esc {
				var ok bool
				if w.tmp, ok = appendUnescapeJSON(w.tmp[:0], text); !ok {
					return dst[:start], Malformed
				}
				text = w.tmp
			}
			key := nextByte(src, end) == ':'
			spans := w.sc.scan(text)
			if !key && cred != credNone && !covers(spans, 0, len(text)) {
				if c := w.credSpan(text, cred, aws, len(spans) > 0); c != nil {
					spans = c
				}
			}
			if key && credOn {
				cred, aws = credKeyword(text)
			} else {
				cred = credNone
			}
			if len(spans) > 0 {
				dst = append(dst, src[pos:i]...)
				dst = w.appendJSONScalar(dst, text, spans, key)
				pos, changed = end, true
			}
			i = end
		case c == '-' || isDigit(c):
			end := i + 1
			for end < n && (isDigit(src[end]) || src[end] == '.' || src[end] == 'e' || src[end] == 'E' || src[end] == '+' || src[end] == '-') {
				end++
			}
			num := src[i:end]
			var spans []span
			if len(num) >= 7 { // "1.2.3.4" is the shortest entity a number token can hold
				spans = w.sc.scan(num)
			}
			if cred != credNone && !covers(spans, 0, len(num)) {
				if c := w.credSpan(num, cred, aws, len(spans) > 0); c != nil {
					spans = c
				}
			}
			cred = credNone
			if len(spans) > 0 {
				dst = append(dst, src[pos:i]...)
				dst = w.appendJSONScalar(dst, num, spans, false)
				pos, changed = end, true
			}
			i = end
		case c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '{' || c == '}' || c == '[' || c == ']' || c == ',':
			cred = credNone
			i++
		case c == 't' || c == 'f' || c == 'n':
			end := i
			for end < n && src[end] >= 'a' && src[end] <= 'z' {
				end++
			}
			if w := string(src[i:end]); w != "true" && w != "false" && w != "null" {
				return dst[:start], Malformed
			}
			cred = credNone
			i = end
		default:
			return dst[:start], Malformed
		}
	}
	if !changed {
		return dst[:start], Kept
	}
	return append(dst, src[pos:]...), Replaced
}

// credSpan makes the whole of a credential-keyed value one span when
// credEntity says so (partial: entities were found that leave part of it
// clear).
func (w *worker) credSpan(v []byte, c credClass, aws, partial bool) []span {
	ent, whole := credEntity(&w.e.det.on, v, c, aws, partial)
	if !whole {
		return nil
	}
	w.one[0] = span{0, len(v), ent}
	return w.one[:]
}

// appendJSONScalar appends the masked text as a JSON string, or null when a
// span's strategy is null (a key is never null: it is redacted).
func (w *worker) appendJSONScalar(dst, text []byte, spans []span, key bool) []byte {
	var null bool
	w.tmp2, null = w.appendMasked(w.tmp2[:0], text, spans, key)
	if null {
		return append(dst, "null"...)
	}
	dst = append(dst, '"')
	dst = appendJSONEscaped(dst, w.tmp2)
	return append(dst, '"')
}

// appendRuleJSON replaces a whole JSON value under a column rule with a JSON
// string: the placeholder, the hash of the JSON text, or the partial mask
// of the string's text (or of the JSON text when it is not a string).
func (w *worker) appendRuleJSON(dst, v []byte, a action) []byte {
	if a.kind == kPartial {
		t := trimJSONSpace(v)
		if len(t) >= 2 && t[0] == '"' {
			if end, _ := jsonStringEnd(t, 0); end == len(t) {
				if u, ok := appendUnescapeJSON(w.tmp[:0], t[1:len(t)-1]); ok {
					w.tmp, v = u, u
				}
			}
		}
	}
	w.tmp2 = w.appendRule(w.tmp2[:0], v, a)
	dst = append(dst, '"')
	dst = appendJSONEscaped(dst, w.tmp2)
	return append(dst, '"')
}

func trimJSONSpace(v []byte) []byte {
	for len(v) > 0 && sepIn(v[0], " \t\r\n") {
		v = v[1:]
	}
	for len(v) > 0 && sepIn(v[len(v)-1], " \t\r\n") {
		v = v[:len(v)-1]
	}
	return v
}

func nextByte(b []byte, i int) byte {
	for ; i < len(b); i++ {
		if c := b[i]; c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c
		}
	}
	return 0
}

// jsonStringEnd returns the index after the closing quote of the string
// starting at b[i] ('"') and whether it contains escapes; -1 if unclosed.
func jsonStringEnd(b []byte, i int) (int, bool) {
	esc := false
	for k := i + 1; k < len(b); k++ {
		switch b[k] {
		case '"':
			return k + 1, esc
		case '\\':
			esc = true
			k++
		}
	}
	return -1, esc
}

// appendUnescapeJSON decodes the escapes of a JSON string's content. Lone
// surrogates become U+FFFD. It reports false on a malformed escape.
func appendUnescapeJSON(dst, s []byte) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		if i >= len(s) {
			return dst, false
		}
		switch s[i] {
		case '"', '\\', '/':
			dst = append(dst, s[i])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(s[i+1:])
			if !ok {
				return dst, false
			}
			i += 4
			// s[i] is the last hex digit; a low surrogate may follow.
			if utf16.IsSurrogate(r) && i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
				if r2, ok := hex4(s[i+3:]); ok {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
						i += 6
					}
				}
			}
			dst = utf8.AppendRune(dst, r) // a lone surrogate becomes U+FFFD
		default:
			return dst, false
		}
	}
	return dst, true
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// appendJSONEscaped appends s as JSON string content: quotes, backslashes
// and control bytes escaped, invalid UTF-8 replaced by U+FFFD.
func appendJSONEscaped(dst, s []byte) []byte {
	const hexd = "0123456789abcdef"
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hexd[c>>4], hexd[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, sz := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && sz == 1 {
			dst = append(dst, "\\ufffd"...)
		} else {
			dst = append(dst, s[i:i+sz]...)
		}
		i += sz
	}
	return dst
}
