package masking

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"

	"github.com/airlock-gw/airlock/protocols"
)

// planKind is the work one column's values need.
type planKind uint8

const (
	pkRuleNull  planKind = iota // column rule: NULL
	pkRuleText                  // column rule on text
	pkRuleJSON                  // column rule on JSON: a JSON string
	pkRuleArray                 // column rule on each array element
	pkText                      // detect in text
	pkJSON                      // detect in JSON strings and numbers
	pkArray                     // detect in array elements
	pkBinArray                  // detect in binary array elements: hit → NULL
	pkOpaque                    // detect in raw bytes: hit → NULL
	pkByteaText                 // decode bytea text output, detect: hit → NULL
	pkNullIP                    // binary inet/cidr with IP detection on: NULL
)

type colPlan struct {
	idx  int
	kind planKind
	off  int // framing bytes kept before the text (jsonb's version byte)
	act  action
}

// Plan decides once per result set what each column's values need, and
// returns nil when no column needs anything.
//
// With detection on: text, JSON and text arrays are masked in place;
// text-format numbers, unknown types (composites, ranges, hstore, …) and
// bytea are scanned and nulled on a hit, since no replacement text would
// be valid for them; binary numbers, booleans, times and UUIDs carry no
// text and are left alone (use a column rule for a bigint holding card
// numbers); binary inet/cidr values are nulled while IP detection is on,
// because they are addresses by type.
func (m *Masker) Plan(cols []protocols.Column) protocols.RowMasker {
	e := m.e
	var plans []colPlan
	for i, c := range cols {
		off := 0
		if c.Binary && (c.Type == protocols.TypeText || c.Type == protocols.TypeJSON || c.Type == protocols.TypeBytes) {
			off = max(c.TextOffset, 0)
		}
		if r := e.columnRule(c); r != nil {
			k := pkRuleNull
			if r.act.kind != kNull {
				switch {
				case c.Type == protocols.TypeText:
					k = pkRuleText
				case c.Type == protocols.TypeJSON:
					k = pkRuleJSON
				case c.Type == protocols.TypeArray && !c.Binary:
					k = pkRuleArray
				}
			}
			if plans == nil {
				plans = make([]colPlan, 0, len(cols)-i)
			}
			plans = append(plans, colPlan{idx: i, kind: k, off: off, act: r.act})
			continue
		}
		if !e.det.any {
			continue
		}
		var k planKind
		switch c.Type {
		case protocols.TypeText:
			k = pkText
		case protocols.TypeJSON:
			k = pkJSON
		case protocols.TypeArray:
			k = pkArray
			if c.Binary {
				k = pkBinArray
			}
		case protocols.TypeBytes:
			k = pkByteaText
			if c.Binary {
				k = pkOpaque
			}
		case protocols.TypeNumber:
			if c.Binary || !e.det.digits {
				continue
			}
			k = pkOpaque
		case protocols.TypeNet:
			if !e.det.on[entIP] {
				continue
			}
			k = pkOpaque
			if c.Binary {
				k = pkNullIP
			}
		case protocols.TypeBool, protocols.TypeTime, protocols.TypeUUID:
			continue
		default:
			k = pkOpaque
		}
		if plans == nil {
			plans = make([]colPlan, 0, len(cols)-i)
		}
		plans = append(plans, colPlan{idx: i, kind: k, off: off})
	}
	if len(plans) == 0 {
		return nil
	}
	r := &rowMasker{plans: plans}
	r.w.e, r.w.sc.d = e, e.det
	return r
}

// rowMasker masks the rows of one result set.
type rowMasker struct {
	w     worker
	plans []colPlan
	out   []byte // replaced values of the current row
}

var _ protocols.RowMasker = (*rowMasker)(nil)

// result is what masking did to one value.
type result uint8

const (
	resSame result = iota
	resNew
	resNull
	resInvalid // the value does not parse as its type claims
)

var empty = []byte{}

// MaskRow masks values in place. Replaced values point into the
// rowMasker's buffer, valid until the next call (so a row must not be
// masked a second time with the same RowMasker); an unchanged row costs no
// allocation, and neither does a changed one once the buffer has grown.
func (r *rowMasker) MaskRow(values [][]byte) bool {
	if cap(r.out) > maxRetained {
		r.out = nil
	}
	r.out = r.out[:0]
	changed := false
	for i := range r.plans {
		p := &r.plans[i]
		if p.idx >= len(values) || values[p.idx] == nil {
			continue
		}
		start := len(r.out)
		var res result
		r.out, res = r.w.value(r.out, values[p.idx], p)
		switch res {
		case resNew:
			v := r.out[start:len(r.out):len(r.out)]
			if len(v) == 0 {
				v = empty
			}
			values[p.idx] = v
			changed = true
		case resNull:
			r.out = r.out[:start]
			values[p.idx] = nil
			changed = true
		default:
			r.out = r.out[:start]
		}
	}
	r.w.flush()
	r.w.trim()
	return changed
}

// value masks one non-NULL value, appending a replacement to dst.
func (w *worker) value(dst, v []byte, p *colPlan) ([]byte, result) {
	switch p.kind {
	case pkRuleNull:
		w.count(entColumn)
		return dst, resNull
	case pkNullIP:
		w.count(entIP)
		return dst, resNull
	case pkOpaque:
		if len(v) < p.off {
			return dst, resNull
		}
		return dst, w.opaque(v[p.off:])
	case pkByteaText:
		return dst, w.byteaText(v)
	case pkBinArray:
		return dst, w.binArray(v)
	case pkArray:
		// Array text only adds quotes and backslashes to its elements, so
		// an array the prefilter rules out holds no element that matches.
		if !w.sc.d.pre.needsScan(v) {
			return dst, resSame
		}
		out, res := w.maskArray(dst, v, nil)
		if res == resInvalid {
			return dst, w.opaque(v)
		}
		return out, res
	case pkRuleArray:
		w.count(entColumn)
		out, res := w.maskArray(dst, v, &p.act)
		if res == resInvalid {
			return dst, resNull
		}
		return out, res
	}
	if len(v) < p.off {
		return dst, resNull // framing missing: malformed, fail closed
	}
	body := v[p.off:]
	start := len(dst)
	dst = append(dst, v[:p.off]...)
	switch p.kind {
	case pkRuleText:
		w.count(entColumn)
		return w.appendRule(dst, body, p.act), resNew
	case pkRuleJSON:
		w.count(entColumn)
		return w.appendRuleJSON(dst, body, p.act), resNew
	case pkJSON:
		// Every JSON string and number is a substring of the document,
		// unless a \u escape spells a trigger byte or a digit.
		if bytes.IndexByte(body, '\\') < 0 && !w.sc.d.pre.needsScan(body) {
			return dst[:start], resSame
		}
		out, res := w.maskJSON(dst, body)
		if res == resInvalid {
			return dst[:start], w.opaque(body)
		}
		if res != resNew {
			return dst[:start], res
		}
		return out, resNew
	}
	spans := w.sc.scan(body)
	if len(spans) == 0 {
		return dst[:start], resSame
	}
	out, null := w.appendMasked(dst, body, spans, false)
	if null {
		return dst[:start], resNull
	}
	return out, resNew
}

// opaque scans a value no replacement could be valid for: any hit nulls it.
func (w *worker) opaque(v []byte) result {
	w.sc.first = true
	spans := w.sc.scan(v)
	w.sc.first = false
	if len(spans) == 0 {
		return resSame
	}
	w.count(spans[0].ent)
	return resNull
}

// byteaText scans a bytea in text output form: hex ("\x4a6f…") is decoded
// first, since hex digits would both hide text and fake digit runs; the
// legacy escape form is unescaped ("\\" and "\ooo" octal). Any hit nulls
// the value: a replacement could corrupt binary content.
func (w *worker) byteaText(v []byte) result {
	defer w.trim()
	if len(v) >= 2 && v[0] == '\\' && v[1] == 'x' {
		h := v[2:]
		if len(h)%2 == 0 {
			w.tmp = growLen(w.tmp, len(h)/2)
			if _, err := hex.Decode(w.tmp, h); err == nil {
				return w.opaque(w.tmp)
			}
		}
		return w.opaque(v)
	}
	w.tmp = unescapeBytea(w.tmp[:0], v)
	return w.opaque(w.tmp)
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

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// binArray scans a binary array value. When it parses as a Postgres
// binary array (array_send: ndim, flags, element type, dimensions, then
// length-prefixed elements) each element is scanned on its own, so a
// length prefix can never glue onto an element's digits; otherwise the raw
// bytes are scanned. Any hit nulls the whole value.
func (w *worker) binArray(v []byte) result {
	if !walkBinArray(v, nil) {
		return w.opaque(v)
	}
	res := resSame
	walkBinArray(v, func(el []byte) bool {
		res = w.opaque(el)
		return res == resSame
	})
	return res
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
