package pgcodec

import (
	"encoding/binary"
	"encoding/hex"

	"github.com/airlock-gw/airlock/masking"
)

// byteaText scans a bytea in text output form: hex ("\x4a6f…") is decoded
// first, since hex digits would both hide text and fake digit runs; the
// legacy escape form is unescaped ("\\" and "\ooo" octal). Any hit nulls
// the value: a replacement could corrupt binary content.
type byteaText struct {
	tmp []byte // the decoded bytes
}

// MaskValue scans the decoded bytes of one bytea value.
func (b *byteaText) MaskValue(dst, v []byte, c *masking.Cell) ([]byte, masking.Outcome) {
	res := c.Opaque(b.decode(v))
	if cap(b.tmp) > maxRetained {
		b.tmp = nil
	}
	return dst, res
}

// decode returns the bytes v spells, or v itself when it starts as the hex
// form but is not valid hex.
func (b *byteaText) decode(v []byte) []byte {
	if len(v) >= 2 && v[0] == '\\' && v[1] == 'x' {
		h := v[2:]
		if len(h)%2 == 0 {
			b.tmp = growLen(b.tmp, len(h)/2)
			if _, err := hex.Decode(b.tmp, h); err == nil {
				return b.tmp
			}
		}
		return v
	}
	b.tmp = unescapeBytea(b.tmp[:0], v)
	return b.tmp
}

func growLen(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

func unescapeBytea(dst, v []byte) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\\' && i+1 < len(v) {
			if v[i+1] == '\\' {
				dst = append(dst, '\\')
				i++
				continue
			}
			if i+3 < len(v) && isOctal(v[i+1]) && isOctal(v[i+2]) && isOctal(v[i+3]) {
				dst = append(dst, (v[i+1]-'0')<<6|(v[i+2]-'0')<<3|(v[i+3]-'0'))
				i += 3
				continue
			}
		}
		dst = append(dst, c)
	}
	return dst
}

// binaryArray scans a binary array value. When it parses as a PostgreSQL
// binary array (array_send: ndim, flags, element type, dimensions, then
// length-prefixed elements) each element is scanned on its own, so a
// length prefix can never glue onto an element's digits; otherwise it is
// Malformed and the raw bytes are scanned. Any hit nulls the whole value.
type binaryArray struct{}

// MaskValue scans the elements of one binary array.
func (binaryArray) MaskValue(dst, v []byte, c *masking.Cell) ([]byte, masking.Outcome) {
	if !walkBinArray(v, nil) {
		return dst, masking.Malformed
	}
	res := masking.Kept
	walkBinArray(v, func(el []byte) bool {
		res = c.Opaque(el)
		return res == masking.Kept
	})
	return dst, res
}

// walkBinArray checks the array_send layout of v and calls f (if not nil)
// with each non-NULL element until f returns false. It reports whether v
// has that layout.
func walkBinArray(v []byte, f func([]byte) bool) bool {
	if len(v) < 12 {
		return false
	}
	be := binary.BigEndian
	ndim, flags := int32(be.Uint32(v)), be.Uint32(v[4:])
	if ndim < 0 || ndim > 6 || flags > 1 {
		return false
	}
	p, count := 12, 0
	if ndim > 0 {
		count = 1
	}
	for range ndim {
		if p+8 > len(v) {
			return false
		}
		size := int32(be.Uint32(v[p:]))
		if size < 0 || (size > 0 && count > len(v)/int(size)) {
			return false
		}
		count *= int(size)
		p += 8
	}
	if count > (len(v)-p)/4 {
		return false
	}
	for range count {
		if p+4 > len(v) {
			return false
		}
		l := int32(be.Uint32(v[p:]))
		p += 4
		if l == -1 {
			continue
		}
		if l < 0 || int(l) > len(v)-p {
			return false
		}
		if f != nil && !f(v[p:p+int(l)]) {
			return true
		}
		p += int(l)
	}
	return p == len(v)
}
