package recording

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/airlock-gw/airlock/protocols"
)

// Frame payloads use a small hand-written binary encoding rather than JSON or
// a schema compiler: rows dominate a recording and carry arbitrary bytes,
// which JSON would have to base64 (a third larger) and encode through
// reflection on the hot path, while a code generator would add a build step
// for six tiny records. Fields are positional; a later format minor revision
// may only append fields, and readers ignore bytes after the fields they
// know. FORMAT.md has the grammar.

// cut returns at most limit bytes of s, backing off to a UTF-8 rune start so
// text stays readable.
func cut[T string | []byte](s T, limit int) T {
	if len(s) <= limit {
		return s
	}
	n := limit
	for n > 0 && n > limit-utf8.UTFMax && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func appendStr(b []byte, s string, limit int) []byte {
	s = cut(s, limit)
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendVarint(b []byte, v int64) []byte { return binary.AppendVarint(b, v) }

// appendCommand encodes: kind, text, omitted text bytes, argument count,
// and for a command with a payload its structural part: tool, method and
// path without the query. The payload's arguments and body are never
// recorded, nor the query, which can carry a key: an engine that wants
// them recorded puts their masked form in the redacted text.
func appendCommand(b []byte, kind, text string, argc int, p *protocols.Payload) []byte {
	b = appendStr(b, kind, maxName)
	t := cut(text, maxText)
	b = appendStr(b, t, maxText)
	b = binary.AppendUvarint(b, uint64(len(text)-len(t)))
	b = binary.AppendUvarint(b, uint64(argc))
	if p == nil {
		return b
	}
	b = appendStr(b, p.Tool, maxName)
	b = appendStr(b, p.Method, maxName)
	return appendStr(b, pathOnly(p.Path), maxPath)
}

// appendDecision encodes: action, risk, rules, reason, approval id,
// reviewer, and, only when one of them is set, the access grant, the
// policy's action, flags (bit 0: audit mode) and the preview as JSON.
// Readers that predate the trailing fields ignore them.
func appendDecision(b []byte, d *protocols.Decision, limit int) []byte {
	b = appendStr(b, string(d.Action), limit)
	b = binary.AppendUvarint(b, uint64(d.Risk))
	b = binary.AppendUvarint(b, uint64(len(d.Rules)))
	for _, r := range d.Rules {
		b = appendStr(b, r, limit)
	}
	b = appendStr(b, d.Reason, limit)
	b = appendStr(b, d.ApprovalID, limit)
	b = appendStr(b, d.Reviewer, limit)
	if d.Grant == "" && d.PolicyAction == "" && !d.Audit && d.Preview == nil {
		return b
	}
	b = appendStr(b, d.Grant, limit)
	b = appendStr(b, string(d.PolicyAction), limit)
	var flags uint64
	if d.Audit {
		flags |= 1
	}
	b = binary.AppendUvarint(b, flags)
	return appendStr(b, previewJSON(d.Preview, limit), limit)
}

// previewJSON is a preview as a decision frame keeps it: JSON, because a
// preview is nested, small and rare (one per reviewed command), and a
// replay shows it as it is. One that does not fit limit keeps its status
// and says so, rather than being cut into invalid JSON.
func previewJSON(p *protocols.Preview, limit int) string {
	if p == nil {
		return ""
	}
	b, err := json.Marshal(p)
	if err != nil || len(b) > limit {
		b, _ = json.Marshal(protocols.Preview{Status: p.Status, Elapsed: p.Elapsed,
			Note: fmt.Sprintf("a preview of %d effects was too large to record", len(p.Effects))})
		if len(b) > limit {
			return ""
		}
	}
	return string(b)
}

// appendColumns encodes: count, then per column name, table, value type and
// flags (bit 0: binary format).
func appendColumns(b []byte, cols []protocols.Column, limit int) []byte {
	b = binary.AppendUvarint(b, uint64(len(cols)))
	for i := range cols {
		c := &cols[i]
		b = appendStr(b, c.Name, limit)
		b = appendStr(b, c.Table, limit)
		b = binary.AppendUvarint(b, uint64(c.Type))
		var flags uint64
		if c.Binary {
			flags |= 1
		}
		b = binary.AppendUvarint(b, flags)
	}
	return appendNatives(b, len(cols), func(i int) uint32 { return cols[i].Native })
}

// appendNatives appends the native type ids of a columns or params frame's
// n items after them, when any is known; readers that predate them ignore
// the trailing bytes.
func appendNatives(b []byte, n int, native func(int) uint32) []byte {
	for i := range n {
		if native(i) != 0 {
			for j := range n {
				b = binary.AppendUvarint(b, uint64(native(j)))
			}
			return b
		}
	}
	return b
}

// natives reads the type ids appendNatives wrote for n items, if any are
// left.
func (d *dec) natives(n int, set func(int, uint32)) {
	if d.bad || len(d.b) == 0 {
		return
	}
	for i := range n {
		id := d.uvarint()
		if id > math.MaxUint32 {
			d.bad = true
		}
		set(i, uint32(id))
	}
}

// appendRow encodes: count, then per value uvarint x: 0 is NULL, otherwise
// x-1 = len<<1 | truncated; a truncated value is followed by the number of
// bytes left out, then the kept bytes. Values are cut to maxValue and the
// whole row to the frame budget, so one huge value cannot stall or fail a
// session.
func appendRow(b []byte, values [][]byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(values)))
	budget := maxFrameBody - 32 - 11*len(values)
	for _, v := range values {
		b, budget = appendValue(b, v, budget)
	}
	return b
}

// appendValue encodes v (nil is NULL), keeping at most budget bytes of it
// (and never more than maxValue); it returns the budget left.
func appendValue(b, v []byte, budget int) ([]byte, int) {
	if v == nil {
		return append(b, 0), budget
	}
	kept := cut(v, min(maxValue, max(budget, 0)))
	return appendKept(b, kept, len(v)-len(kept)), budget - len(kept)
}

// appendKept encodes a non-NULL value of which kept is recorded and
// omitted bytes are left out.
func appendKept(b, kept []byte, omitted int) []byte {
	if omitted == 0 {
		b = binary.AppendUvarint(b, (uint64(len(kept))<<1)+1)
	} else {
		b = binary.AppendUvarint(b, (uint64(len(kept))<<1|1)+1)
		b = binary.AppendUvarint(b, uint64(omitted))
	}
	return append(b, kept...)
}

// appendParams encodes: portal, then per parameter a flags byte (bit 0
// binary format, bit 1 withheld) and the value as a row encodes it; a
// withheld value keeps no bytes and counts them as omitted.
func appendParams(b []byte, portal string, params []protocols.Param) []byte {
	b = appendStr(b, portal, maxText)
	b = binary.AppendUvarint(b, uint64(len(params)))
	budget := maxFrameBody - 32 - len(portal) - 12*len(params)
	for _, p := range params {
		var flags byte
		if p.Binary {
			flags |= paramBinary
		}
		if p.Withheld {
			b = appendKept(append(b, flags|paramWithheld), []byte{}, max(p.Omitted, 0))
			continue
		}
		b, budget = appendValue(append(b, flags), p.Value, budget)
	}
	return appendNatives(b, len(params), func(i int) uint32 { return params[i].Native })
}

// Parameter flags.
const (
	paramBinary   = 1 << 0
	paramWithheld = 1 << 1
)

// ParamsRecord is a recorded Bind: the portal and its parameter values.
type ParamsRecord struct {
	Portal string
	Values []ParamValue
}

// ParamValue is one recorded parameter. Withheld values keep no bytes;
// Omitted says how many there were.
type ParamValue struct {
	Value
	Binary   bool
	Withheld bool
	Native   uint32 // the type in the session's protocol (Param.Native), 0 when unknown
}

func decodeParams(p []byte) (*ParamsRecord, error) {
	d := dec{b: p}
	rec := &ParamsRecord{Portal: d.str()}
	n := d.count(2)
	rec.Values = make([]ParamValue, n)
	for i := range rec.Values {
		v := &rec.Values[i]
		flags := d.bytes(1)
		if d.bad {
			break
		}
		v.Binary, v.Withheld = flags[0]&paramBinary != 0, flags[0]&paramWithheld != 0
		v.Value = d.value()
	}
	d.natives(n, func(i int, id uint32) { rec.Values[i].Native = id })
	if d.bad || len(d.b) != 0 {
		return nil, errPayload
	}
	return rec, nil
}

// appendResult encodes: tag, rows, duration (ns), error, code.
func appendResult(b []byte, r *protocols.Result, limit int) []byte {
	b = appendStr(b, r.Tag, limit)
	b = appendVarint(b, r.Rows)
	b = appendVarint(b, int64(r.Duration))
	b = appendStr(b, r.Error, limit)
	return appendStr(b, r.Code, limit)
}

// appendSeal encodes a checkpoint or trailer: frame count, chain head, MAC
// (empty when unsigned).
func appendSeal(b []byte, count int64, head *[32]byte, mac []byte) []byte {
	b = binary.AppendUvarint(b, uint64(count))
	b = append(b, head[:]...)
	b = binary.AppendUvarint(b, uint64(len(mac)))
	return append(b, mac...)
}

// errPayload says a frame's payload does not parse.
var errPayload = errors.New("malformed payload")

// dec reads the primitives above from a payload. Every count is checked
// against the bytes left before anything is allocated for it.
type dec struct {
	b   []byte
	bad bool
}

func (d *dec) uvarint() uint64 {
	if d.bad {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) varint() int64 {
	if d.bad {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a element count; each element needs at least minSize bytes.
func (d *dec) count(minSize int) int {
	v := d.uvarint()
	if d.bad || v > uint64(len(d.b)/minSize) {
		d.bad = true
		return 0
	}
	return int(v)
}

func (d *dec) bytes(n uint64) []byte {
	if d.bad || n > uint64(len(d.b)) {
		d.bad = true
		return nil
	}
	out := d.b[:n:n]
	d.b = d.b[n:]
	return out
}

func (d *dec) str() string { return string(d.bytes(d.uvarint())) }

// value reads one value as appendValue writes it.
func (d *dec) value() Value {
	var v Value
	x := d.uvarint()
	if x == 0 {
		v.Null = true
		return v
	}
	x--
	if x&1 != 0 {
		om := d.uvarint()
		if om > math.MaxInt64 {
			d.bad = true
		}
		v.Omitted = int64(om)
	}
	v.Bytes = append([]byte{}, d.bytes(x>>1)...)
	return v
}

// CommandRecord is a recorded command: its redacted text, never the original.
type CommandRecord struct {
	Kind string `json:"kind,omitempty"`
	Text string `json:"text"`
	// Omitted counts the bytes cut from a text longer than the format keeps.
	Omitted int64 `json:"omitted,omitempty"`
	// Args is the number of arguments of a Redis command.
	Args int `json:"args,omitempty"`
	// Tool, Method and Path are the structural part of a command's payload
	// (an MCP tool call, an HTTP request); Path has no query. The payload's
	// arguments and body are not recorded.
	Tool   string `json:"tool,omitempty"`
	Method string `json:"method,omitempty"`
	Path   string `json:"path,omitempty"`
}

func decodeCommand(p []byte) (*CommandRecord, error) {
	d := dec{b: p}
	c := &CommandRecord{Kind: d.str(), Text: d.str()}
	om, argc := d.uvarint(), d.uvarint()
	if len(d.b) > 0 {
		c.Tool, c.Method, c.Path = d.str(), d.str(), d.str()
	}
	if d.bad || om > math.MaxInt64 || argc > math.MaxInt32 {
		return nil, errPayload
	}
	c.Omitted, c.Args = int64(om), int(argc)
	return c, nil
}

func decodeDecision(p []byte) (*protocols.Decision, error) {
	d := dec{b: p}
	out := &protocols.Decision{Action: protocols.Action(d.str())}
	risk := d.uvarint()
	if risk > math.MaxUint8 {
		return nil, errPayload
	}
	out.Risk = protocols.Risk(risk)
	if n := d.count(1); n > 0 {
		out.Rules = make([]string, n)
		for i := range out.Rules {
			out.Rules[i] = d.str()
		}
	}
	out.Reason, out.ApprovalID, out.Reviewer = d.str(), d.str(), d.str()
	if len(d.b) > 0 && !d.bad {
		out.Grant, out.PolicyAction = d.str(), protocols.Action(d.str())
		out.Audit = d.uvarint()&1 != 0
		if p := d.str(); p != "" && !d.bad {
			out.Preview = new(protocols.Preview)
			if err := json.Unmarshal([]byte(p), out.Preview); err != nil {
				return nil, errPayload
			}
		}
	}
	if d.bad {
		return nil, errPayload
	}
	return out, nil
}

func decodeColumns(p []byte) ([]protocols.Column, error) {
	d := dec{b: p}
	n := d.count(4)
	cols := make([]protocols.Column, n)
	for i := range cols {
		cols[i].Name, cols[i].Table = d.str(), d.str()
		t := d.uvarint()
		flags := d.uvarint()
		if t > math.MaxUint8 {
			d.bad = true
		}
		cols[i].Type, cols[i].Binary = protocols.ValueType(t), flags&1 != 0
	}
	d.natives(n, func(i int, id uint32) { cols[i].Native = id })
	if d.bad {
		return nil, errPayload
	}
	return cols, nil
}

// Value is one recorded row value.
type Value struct {
	Null  bool
	Bytes []byte
	// Omitted counts the bytes the writer left out of a value too large to
	// keep whole.
	Omitted int64
}

func decodeRow(p []byte) ([]Value, error) {
	d := dec{b: p}
	n := d.count(1)
	vals := make([]Value, n)
	for i := range vals {
		vals[i] = d.value()
	}
	if d.bad {
		return nil, errPayload
	}
	return vals, nil
}

// checkRow checks a row payload as decodeRow would, without allocating.
func checkRow(p []byte) error {
	d := dec{b: p}
	n := d.count(1)
	for range n {
		x := d.uvarint()
		if x == 0 {
			continue
		}
		x--
		if x&1 != 0 && d.uvarint() > math.MaxInt64 {
			d.bad = true
		}
		d.bytes(x >> 1)
	}
	if d.bad {
		return errPayload
	}
	return nil
}

func decodeResult(p []byte) (*protocols.Result, error) {
	d := dec{b: p}
	r := &protocols.Result{Tag: d.str(), Rows: d.varint(), Duration: time.Duration(d.varint())}
	r.Error, r.Code = d.str(), d.str()
	if d.bad {
		return nil, errPayload
	}
	return r, nil
}

func decodeEnd(p []byte) (string, error) {
	d := dec{b: p}
	s := d.str()
	if d.bad {
		return "", errPayload
	}
	return s, nil
}

// Seal is a checkpoint's or the trailer's content: how many frames precede
// it and the chain head after them, signed when the recording has a key.
type Seal struct {
	Count int64    `json:"count"`
	Head  [32]byte `json:"-"`
	MAC   []byte   `json:"-"`
}

func decodeSeal(p []byte) (*Seal, error) {
	d := dec{b: p}
	s := &Seal{}
	c := d.uvarint()
	copy(s.Head[:], d.bytes(32))
	if m := d.bytes(d.uvarint()); len(m) > 0 {
		s.MAC = append([]byte{}, m...)
	}
	if d.bad || c > math.MaxInt64 || (len(s.MAC) != 0 && len(s.MAC) != 32) {
		return nil, errPayload
	}
	s.Count = int64(c)
	return s, nil
}
