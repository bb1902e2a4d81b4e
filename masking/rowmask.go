package masking

import (
	"bytes"

	"github.com/airlock-gw/airlock/protocols"
)

// planKind is the work one column's values need.
type planKind uint8

const (
	pkRuleNull  planKind = iota // column rule: NULL
	pkRuleText                  // column rule on text
	pkRuleJSON                  // column rule on JSON: a JSON string
	pkRuleCodec                 // column rule on each part the dialect's codec decodes
	pkText                      // detect in text
	pkJSON                      // detect in JSON strings and numbers
	pkCodec                     // detect in the parts the dialect's codec decodes
	pkOpaque                    // detect in raw bytes: hit → NULL
	pkNullIP                    // binary inet/cidr with IP detection on: NULL
)

type colPlan struct {
	idx   int
	kind  planKind
	codec uint32 // index in rowMasker.codecs (pkCodec, pkRuleCodec)
	off   int    // framing bytes kept before the text (jsonb's version byte)
	act   action
}

// Plan decides once per result set what each column's values need, and
// returns nil when no column needs anything.
//
// With detection on: text and JSON are masked in place; byte strings and
// arrays go to the dialect's codec when it has one for them, and are
// otherwise opaque; text-format numbers, unknown types (composites,
// ranges, hstore, …) and opaque values are scanned and nulled on a hit,
// since no replacement text would be valid for them; binary numbers,
// booleans, times and UUIDs carry no text and are left alone (use a column
// rule for a bigint holding card numbers); binary inet/cidr values are
// nulled while IP detection is on, because they are addresses by type.
func (m *Masker) Plan(cols []protocols.Column) protocols.RowMasker {
	e := m.e
	var plans []colPlan
	var codecs []Codec
	for i, c := range cols {
		off := 0
		if c.Binary && (c.Type == protocols.TypeText || c.Type == protocols.TypeJSON || c.Type == protocols.TypeBytes) {
			off = max(c.TextOffset, 0)
		}
		var codec Codec
		if r := e.columnRule(c); r != nil {
			k := pkRuleNull
			if r.act.kind != kNull {
				switch c.Type {
				case protocols.TypeText:
					k = pkRuleText
				case protocols.TypeJSON:
					k = pkRuleJSON
				case protocols.TypeBytes, protocols.TypeArray:
					if codec = e.codec(c, true); codec != nil {
						k = pkRuleCodec
					}
				}
			}
			if plans == nil {
				plans = make([]colPlan, 0, len(cols)-i)
			}
			plans = append(plans, colPlan{idx: i, kind: k, codec: uint32(len(codecs)), off: off, act: r.act})
			if codec != nil {
				codecs = append(codecs, codec)
			}
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
		case protocols.TypeBytes, protocols.TypeArray:
			k = pkOpaque
			if codec = e.codec(c, false); codec != nil {
				k = pkCodec
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
		plans = append(plans, colPlan{idx: i, kind: k, codec: uint32(len(codecs)), off: off})
		if codec != nil {
			codecs = append(codecs, codec)
		}
	}
	if len(plans) == 0 {
		return nil
	}
	r := &rowMasker{plans: plans, codecs: codecs}
	r.w.e, r.w.sc.d = e, e.det
	r.cell.w = &r.w
	return r
}

// codec asks the dialect for the codec of c's values; nil without a
// dialect.
func (e *engine) codec(c protocols.Column, rule bool) Codec {
	if e.dialect == nil {
		return nil
	}
	return e.dialect.Codec(c, rule)
}

// rowMasker masks the rows of one result set.
type rowMasker struct {
	w      worker
	plans  []colPlan
	codecs []Codec
	cell   Cell   // lent to codecs, one value at a time
	out    []byte // replaced values of the current row
}

var _ protocols.RowMasker = (*rowMasker)(nil)

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
		var res Outcome
		r.out, res = r.value(r.out, values[p.idx], p)
		switch res {
		case Replaced:
			v := r.out[start:len(r.out):len(r.out)]
			if len(v) == 0 {
				v = empty
			}
			values[p.idx] = v
			changed = true
		case Nulled:
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
func (r *rowMasker) value(dst, v []byte, p *colPlan) ([]byte, Outcome) {
	w := &r.w
	switch p.kind {
	case pkRuleNull:
		w.count(entColumn)
		return dst, Nulled
	case pkNullIP:
		w.count(entIP)
		return dst, Nulled
	case pkOpaque:
		if len(v) < p.off {
			return dst, Nulled
		}
		return dst, w.opaque(v[p.off:])
	case pkCodec:
		r.cell.act, r.cell.whole = action{}, false
		out, res := r.codecs[p.codec].MaskValue(dst, v, &r.cell)
		switch res {
		case Replaced:
			return out, Replaced
		case Malformed:
			return dst, w.opaque(v)
		}
		return dst, res
	case pkRuleCodec:
		w.count(entColumn)
		r.cell.act, r.cell.whole = p.act, true
		out, res := r.codecs[p.codec].MaskValue(dst, v, &r.cell)
		switch res {
		case Replaced:
			return out, Replaced
		case Malformed:
			return dst, Nulled
		}
		return dst, res
	}
	if len(v) < p.off {
		return dst, Nulled // framing missing: malformed, fail closed
	}
	body := v[p.off:]
	start := len(dst)
	dst = append(dst, v[:p.off]...)
	switch p.kind {
	case pkRuleText:
		w.count(entColumn)
		return w.appendRule(dst, body, p.act), Replaced
	case pkRuleJSON:
		w.count(entColumn)
		return w.appendRuleJSON(dst, body, p.act), Replaced
	case pkJSON:
		// Every JSON string and number is a substring of the document,
		// unless a \u escape spells a trigger byte or a digit.
		if bytes.IndexByte(body, '\\') < 0 && !w.sc.d.pre.needsScan(body) {
			return dst[:start], Kept
		}
		out, res := w.maskJSON(dst, body)
		if res == Malformed {
			return dst[:start], w.opaque(body)
		}
		if res != Replaced {
			return dst[:start], res
		}
		return out, Replaced
	}
	spans := w.sc.scan(body)
	if len(spans) == 0 {
		return dst[:start], Kept
	}
	out, null := w.appendMasked(dst, body, spans, false)
	if null {
		return dst[:start], Nulled
	}
	return out, Replaced
}

// opaque scans a value no replacement could be valid for: any hit nulls it.
func (w *worker) opaque(v []byte) Outcome {
	w.sc.first = true
	spans := w.sc.scan(v)
	w.sc.first = false
	if len(spans) == 0 {
		return Kept
	}
	w.count(spans[0].ent)
	return Nulled
}
