package pgcodec

import (
	"bytes"
	"strings"

	"github.com/airlock-gw/airlock/masking"
)

// arrayText masks array_out's text form, the array literal, by hand (no
// library exposes it without importing a driver's type system): optional
// dimension decoration "[1:3]=", nested braces, elements separated by ','
// that are either double-quoted with backslash escapes, or bare (NULL,
// case-insensitive, is the null element). Only masked elements are
// rewritten, always double-quoted, so the literal keeps its syntax.
//
// The element type is not known (protocols.Column has none), so an element
// whose text could be a number, an address or hex (a digit, and only
// digits, hex letters, '.', ':', '+', '-', '/') becomes NULL instead of
// replacement text, which would not decode in an int8[] or inet[] array.
type arrayText struct {
	tmp []byte // the unescaped element
}

// MaskValue masks the elements of one array literal: detected entities, or
// every non-NULL element under a column rule.
func (a *arrayText) MaskValue(dst, v []byte, c *masking.Cell) ([]byte, masking.Outcome) {
	// Array text only adds quotes and backslashes to its elements, so an
	// array the prefilter rules out holds no element that matches.
	if !c.MayChange(v) {
		return dst, masking.Kept
	}
	out, res := a.mask(dst, v, c)
	if cap(a.tmp) > maxRetained {
		a.tmp = nil
	}
	return out, res
}

// mask appends the array literal src with its elements masked by cell. It
// returns Kept (dst unchanged), Replaced or Malformed.
func (a *arrayText) mask(dst, src []byte, cell *masking.Cell) ([]byte, masking.Outcome) {
	start := len(dst)
	n := len(src)
	i := 0
	if n > 0 && src[0] == '[' {
		k := bytes.IndexByte(src, '=')
		if k < 0 {
			return dst[:start], masking.Malformed
		}
		i = k + 1
	}
	for i < n && isArraySpace(src[i]) {
		i++
	}
	if i >= n || src[i] != '{' {
		return dst[:start], masking.Malformed
	}
	pos, depth, changed, closed := 0, 0, false, false
	for i < n {
		c := src[i]
		switch {
		case isArraySpace(c):
			i++
			continue
		case closed:
			return dst[:start], masking.Malformed // bytes after the outer '}'
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
			return dst[:start], masking.Malformed
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
				return dst[:start], masking.Malformed
			}
			tokEnd = k + 1
			text = src[i+1 : k]
			if nb := nextArrayByte(src, tokEnd); nb != ',' && nb != '}' {
				return dst[:start], masking.Malformed // quoted and bare parts mixed: not array_out's form
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
				return dst[:start], masking.Malformed
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
			a.tmp = unescapeArray(a.tmp[:0], text)
			text = a.tmp
		}
		repl, null, ok := element(text, cell)
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
		return dst[:start], masking.Malformed
	}
	if !changed {
		return dst[:start], masking.Kept
	}
	return append(dst, src[pos:]...), masking.Replaced
}

// element masks one element's text; ok reports a change, null that the
// element becomes NULL.
func element(text []byte, c *masking.Cell) (repl []byte, null, ok bool) {
	if c.Whole() && scalarShaped(text) {
		return nil, true, true
	}
	repl, res := c.Mask(text)
	switch {
	case res == masking.Kept:
		return nil, false, false
	case res == masking.Nulled || scalarShaped(text):
		return nil, true, true
	}
	return repl, false, true
}

// scalarShaped reports element text that may belong to a numeric, network
// or other non-text array.
func scalarShaped(t []byte) bool {
	digit := false
	for _, b := range t {
		if !isHex(b) && strings.IndexByte(".:+-/", b) < 0 {
			return false
		}
		digit = digit || isDigit(b)
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
