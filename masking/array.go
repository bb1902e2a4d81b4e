package masking

import "bytes"

// Array masking parses the Postgres array literal text form by hand (no
// library exposes it without importing a driver's type system): optional
// dimension decoration "[1:3]=", nested braces, elements separated by ','
// that are either double-quoted with backslash escapes, or bare (NULL,
// case-insensitive, is the null element). Only masked elements are
// rewritten, always double-quoted, so the literal keeps its syntax.
//
// The element type is not known (protocols.Column has none), so an element
// whose text could be a number, an address or hex (a digit, and only
// digits, hex letters, '.', ':', '+', '-', '/') becomes NULL instead of replacement text, which
// would not decode in an int8[] or inet[] array.

// maskArray appends the array literal src with masked elements: detected
// entities when rule is nil, every non-NULL element under rule otherwise.
// It returns resSame (dst unchanged), resNew or resInvalid.
func (w *worker) maskArray(dst, src []byte, rule *action) ([]byte, result) {
	start := len(dst)
	n := len(src)
	i := 0
	if n > 0 && src[0] == '[' {
		k := bytes.IndexByte(src, '=')
		if k < 0 {
			return dst[:start], resInvalid
		}
		i = k + 1
	}
	for i < n && isArraySpace(src[i]) {
		i++
	}
	if i >= n || src[i] != '{' {
		return dst[:start], resInvalid
	}
	pos, depth, changed, closed := 0, 0, false, false
	for i < n {
		c := src[i]
		switch {
		case isArraySpace(c):
			i++
			continue
		case closed:
			return dst[:start], resInvalid // bytes after the outer '}'
		case c == '{':
			depth++
			i++
			continue
		case c == '}':
			depth--
			closed = depth == 0
			i++
			continue
		case c == ',' && depth > 0:
			i++
			continue
		case depth == 0:
			return dst[:start], resInvalid
		}
		var tokEnd int
		var text []byte
		esc := false
		if c == '"' {
			k := i + 1
			for k < n && src[k] != '"' {
				if src[k] == '\\' {
					esc = true
					k++
				}
				k++
			}
			if k >= n {
				return dst[:start], resInvalid
			}
			tokEnd = k + 1
			text = src[i+1 : k]
			if nb := nextArrayByte(src, tokEnd); nb != ',' && nb != '}' {
				return dst[:start], resInvalid // quoted and bare parts mixed: not array_out's form
			}
		} else {
			k := i
			for k < n && src[k] != ',' && src[k] != '}' && src[k] != '{' && src[k] != '"' {
				if src[k] == '\\' {
					esc = true
					k++
				}
				k++
			}
			k = min(k, n)
			if k < n && (src[k] == '"' || src[k] == '{') {
				return dst[:start], resInvalid
			}
			e := k
			for e > i && isArraySpace(src[e-1]) && (e-2 < i || src[e-2] != '\\') {
				e--
			}
			tokEnd, text = e, src[i:e]
			if !esc && equalFold(text, "null") {
				i = k
				continue
			}
		}
		if esc {
			w.tmp = unescapeArray(w.tmp[:0], text)
			text = w.tmp
		}
		repl, null, ok := w.arrayElement(text, rule)
		if ok {
			dst = append(dst, src[pos:i]...)
			if null {
				dst = append(dst, "NULL"...)
			} else {
				dst = appendArrayQuoted(dst, repl)
			}
			pos, changed = tokEnd, true
		}
		i = tokEnd
	}
	if depth != 0 {
		return dst[:start], resInvalid
	}
	if !changed {
		return dst[:start], resSame
	}
	return append(dst, src[pos:]...), resNew
}

// arrayElement masks one element's text; ok reports a change, null that the
// element becomes NULL.
func (w *worker) arrayElement(text []byte, rule *action) (repl []byte, null, ok bool) {
	if rule != nil {
		if scalarShaped(text) {
			return nil, true, true
		}
		w.tmp2 = w.appendRule(w.tmp2[:0], text, *rule)
		return w.tmp2, false, true
	}
	spans := w.sc.scan(text)
	if len(spans) == 0 {
		return nil, false, false
	}
	w.tmp2, null = w.appendMasked(w.tmp2[:0], text, spans, false)
	if null || scalarShaped(text) {
		return nil, true, true
	}
	return w.tmp2, false, true
}

// scalarShaped reports element text that may belong to a numeric, network
// or other non-text array.
func scalarShaped(t []byte) bool {
	digit := false
	for _, c := range t {
		if class[c]&cHex == 0 && !sepIn(c, ".:+-/") {
			return false
		}
		digit = digit || isDigit(c)
	}
	return digit
}

func nextArrayByte(b []byte, i int) byte {
	for ; i < len(b); i++ {
		if !isArraySpace(b[i]) {
			return b[i]
		}
	}
	return 0
}

func isArraySpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func unescapeArray(dst, s []byte) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		dst = append(dst, s[i])
	}
	return dst
}

func appendArrayQuoted(dst, s []byte) []byte {
	dst = append(dst, '"')
	for _, c := range s {
		if c == '"' || c == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}
