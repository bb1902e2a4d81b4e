package redis

import (
	"strconv"
	"strings"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/redis/resp"
)

// What a recording keeps of one reply: its first values, each cut short.
// The recorder bounds it again.
const (
	recordValues     = 16
	recordValueBytes = 1 << 10
	// maxPlans bounds the masking plans a session keeps by hash field.
	maxPlans = 512
)

// shape says where a reply holds a hash's fields and values, so that
// masking rules by column name apply to a hash's fields as to a table's
// columns. RESP3 maps need no shape: their keys name their values.
type shape struct {
	// table is the hash's key.
	table string
	// pairs is the depth whose arrays alternate field and value (HGETALL
	// in RESP2: 1), 0 for none.
	pairs int
	// names are the fields the command named (HGET, HMGET), for the values
	// at depth namesAt.
	names   []string
	namesAt int
	// exec holds the shapes of a transaction's commands, for EXEC's reply.
	exec []shape
}

var noShape shape

// shapeOf is the shape of the reply to a command.
func shapeOf(name string, args [][]byte, p resp.Proto) shape {
	if len(args) < 2 {
		return noShape
	}
	key := string(args[1])
	switch name {
	case "HGET":
		if len(args) == 3 {
			return shape{table: key, names: []string{string(args[2])}}
		}
	case "HMGET":
		return shape{table: key, names: strs(args[2:]), namesAt: 1}
	case "HGETDEL", "HGETEX":
		for i := 2; i+1 < len(args); i++ {
			if strings.EqualFold(string(args[i]), "FIELDS") {
				return shape{table: key, names: strs(args[i+2:]), namesAt: 1}
			}
		}
	case "HGETALL":
		if p < resp.RESP3 {
			return shape{table: key, pairs: 1}
		}
	case "HRANDFIELD":
		if len(args) == 4 && strings.EqualFold(string(args[3]), "WITHVALUES") {
			if p < resp.RESP3 {
				return shape{table: key, pairs: 1}
			}
			return shape{table: key, pairs: 2}
		}
	case "HSCAN":
		for _, a := range args[3:] {
			if strings.EqualFold(string(a), "NOVALUES") {
				return noShape
			}
		}
		return shape{table: key, pairs: 2}
	}
	return shape{table: key}
}

func strs(args [][]byte) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = string(a)
	}
	return out
}

// level is an aggregate of the reply being walked.
type level struct {
	pairs bool  // a map, an attribute, or an array of field, value pairs
	index int64 // elements seen so far
	// key is the field of the pair being read, unmasked: it names the
	// value that follows.
	key   []byte
	keyOK bool
}

// walker takes one reply at a time, token by token, through masking and
// into the client's output, and collects what the recording keeps of it.
// It belongs to the upstream reader.
type walker struct {
	masker protocols.Masker // nil: nothing masked
	rules  bool             // masker has rules by column name
	record bool
	plans  map[string]protocols.RowMasker
	one    [1][]byte

	// Per reply.
	sh    shape
	proto resp.Proto
	stack []level
	out   func([]byte)
	// withheld is set inside a streamed value too large to mask, whose
	// parts are dropped.
	withheld bool
	// streamed is set after the header of a streamed value the recording
	// has not sampled yet.
	streamed bool
	kind     string
	// kept holds the values the recording keeps, back to back, and spans
	// where each is (a null has none): one buffer for the session rather
	// than a copy per value.
	kept    []byte
	spans   []keptSpan
	values  [][]byte // reply's view of kept, rebuilt per reply
	count   int64
	errText string
	// lastInt is the last integer seen at depth 1, for pub/sub
	// confirmations.
	lastInt int64
	// emitted counts the bytes written for the reply.
	emitted int64
}

// begin starts a reply of shape sh, written with emit.
func (w *walker) begin(sh shape, p resp.Proto, emit func([]byte)) {
	w.sh, w.proto, w.out = sh, p, emit
	w.emitted = 0
	w.stack = w.stack[:0]
	w.withheld, w.streamed = false, false
	w.kind, w.errText, w.count, w.lastInt = "", "", 0, 0
	w.forget()
}

// keptSpan is where a kept value lies in walker.kept.
type keptSpan struct {
	start, end int
	null       bool
}

// forget drops the values kept of the previous reply.
func (w *walker) forget() {
	w.kept, w.spans = w.kept[:0], w.spans[:0]
}

// reply is what the recording keeps of the reply walked; its values are
// valid until the next reply begins.
func (w *walker) reply() protocols.Reply {
	clear(w.values)
	w.values = w.values[:0]
	for _, sp := range w.spans {
		var v []byte
		if !sp.null {
			v = w.kept[sp.start:sp.end:sp.end]
		}
		w.values = append(w.values, v)
	}
	return protocols.Reply{Kind: w.kind, Values: w.values, Count: w.count}
}

// token takes one token through masking to the output.
func (w *walker) token(t resp.Token) {
	switch t.Part {
	case resp.PartChunk, resp.PartEnd:
		w.part(t)
		return
	}
	parent, idx := w.position(t)
	if t.Depth == 0 && !t.Attr && w.kind == "" {
		w.kind = replyKind(t)
	}
	switch {
	case t.Kind.Aggregate() && t.Len >= 0:
		w.emit(t.Raw)
		if t.Len > 0 {
			w.stack = append(w.stack, level{pairs: w.pairsAt(t)})
		}
	case t.Part == resp.PartBegin:
		w.begun(t)
	default:
		w.scalar(t, parent, idx)
	}
}

// part handles a chunk or the end of a streamed value.
func (w *walker) part(t resp.Token) {
	if w.withheld {
		w.withheld = t.Part != resp.PartEnd
		return
	}
	if w.streamed && t.Part == resp.PartChunk {
		w.streamed = false
		w.keep(t.Payload[:min(len(t.Payload), recordValueBytes)])
	}
	w.emit(t.Raw)
}

// position closes the aggregates t is past and returns the one it is an
// element of (nil at the top) with its index there (-1 for an attribute,
// which annotates the next element and is not one).
func (w *walker) position(t resp.Token) (*level, int64) {
	for len(w.stack) > t.Depth {
		w.stack = w.stack[:len(w.stack)-1]
	}
	if t.Depth == 0 || len(w.stack) < t.Depth {
		return nil, -1
	}
	parent := &w.stack[t.Depth-1]
	if t.Kind == resp.Attribute && t.Attr {
		return parent, -1
	}
	parent.index++
	return parent, parent.index - 1
}

// scalar masks a whole scalar, writes it and keeps it for the recording.
func (w *walker) scalar(t resp.Token, parent *level, idx int64) {
	var name []byte
	if !t.Attr {
		name = w.name(t, parent, idx)
	}
	value, null, changed := w.mask(t, name)
	if redirect(t) {
		value, changed = append([]byte("ERR Airlock does not follow cluster redirections ("), t.Payload...), true
		value = append(value, "): cluster upstreams are not supported"...)
	}
	if null && parent != nil && parent.pairs {
		// A hash holds no nulls, and clients fail on one in HGETALL's
		// reply: a field masked to null reads as empty.
		value, null = []byte{}, false
	}
	switch {
	case !changed:
		w.emit(t.Raw)
	case null:
		w.emit(resp.AppendNull(nil, w.proto))
	default:
		out, err := resp.AppendToken(nil, t, value)
		if err != nil {
			out = resp.AppendBulk(nil, value)
		}
		w.emit(out)
	}
	if t.Attr {
		return
	}
	if t.Depth == 0 && (t.Kind == resp.SimpleError || t.Kind == resp.BulkError) {
		w.errText = string(value)
	}
	if t.Depth == 1 && t.Kind == resp.Integer {
		w.lastInt, _ = t.Int()
	}
	if null || t.IsNull() {
		w.keep(nil)
	} else {
		w.keep(value[:min(len(value), recordValueBytes)])
	}
}

// begun handles the header of a value streamed in chunks: relayed as it
// comes to a caller whose replies are not masked, withheld from one whose
// are, since masking needs the value whole.
func (w *walker) begun(t resp.Token) {
	if w.masker == nil {
		w.emit(t.Raw)
		w.streamed = true
		return
	}
	w.withheld = true
	msg := "ERR Airlock withheld a value of " + strconv.FormatInt(t.Len, 10) +
		" bytes: values this large cannot be masked (redis.max_masked_value)"
	w.emit(resp.AppendError(nil, msg))
	w.keep([]byte("[withheld]"))
}

// emit writes b to the reply's output.
func (w *walker) emit(b []byte) {
	w.emitted += int64(len(b))
	w.out(b)
}

// keep adds a value to what the recording keeps of the reply.
func (w *walker) keep(v []byte) {
	if !w.record {
		return
	}
	w.count++
	if len(w.spans) >= recordValues {
		return
	}
	if v == nil {
		w.spans = append(w.spans, keptSpan{null: true})
		return
	}
	if w.kept == nil {
		// An empty value is not a null: its view must not be nil.
		w.kept = make([]byte, 0, 256)
	}
	start := len(w.kept)
	w.kept = append(w.kept, v...)
	w.spans = append(w.spans, keptSpan{start: start, end: len(w.kept)})
}

// pairsAt reports whether the aggregate t opens holds field, value pairs.
func (w *walker) pairsAt(t resp.Token) bool {
	if t.Kind == resp.Map || t.Kind == resp.Attribute {
		return true
	}
	sh, rel := w.shapeAt(t.Depth + 1)
	return sh.pairs > 0 && sh.pairs == rel
}

// shapeAt returns the shape that applies at depth d and d relative to it:
// inside EXEC's reply, the shape of the transaction's command.
func (w *walker) shapeAt(d int) (*shape, int) {
	if w.sh.exec == nil {
		return &w.sh, d
	}
	if d == 0 || len(w.stack) == 0 {
		return &noShape, d
	}
	i := w.stack[0].index - 1
	if i < 0 || i >= int64(len(w.sh.exec)) {
		return &noShape, d
	}
	return &w.sh.exec[i], d - 1
}

// name returns the field that names scalar t, or nil. A pair's field is
// remembered for its value.
func (w *walker) name(t resp.Token, parent *level, idx int64) []byte {
	if parent != nil && parent.pairs {
		if idx%2 == 0 {
			parent.key = append(parent.key[:0], t.Payload...)
			parent.keyOK = t.Part == resp.PartWhole
			return nil
		}
		if parent.keyOK {
			return parent.key
		}
		return nil
	}
	sh, rel := w.shapeAt(t.Depth)
	if sh.names == nil || rel != sh.namesAt {
		return nil
	}
	if rel == 0 {
		return []byte(sh.names[0])
	}
	if idx >= 0 && idx < int64(len(sh.names)) {
		return []byte(sh.names[idx])
	}
	return nil
}

// mask masks a scalar's payload: by the rule for its field when a hash
// field names it, else by the detectors.
func (w *walker) mask(t resp.Token, name []byte) (value []byte, null, changed bool) {
	value = t.Payload
	if w.masker == nil {
		return value, false, false
	}
	switch t.Kind {
	case resp.SimpleString, resp.BulkString, resp.Verbatim, resp.SimpleError, resp.BulkError:
	default:
		return value, false, false
	}
	if t.IsNull() {
		return value, false, false
	}
	if name != nil && w.rules {
		sh, _ := w.shapeAt(t.Depth)
		rm := w.plan(sh.table, name)
		if rm == nil {
			return value, false, false
		}
		w.one[0] = value
		if !rm.MaskRow(w.one[:]) {
			return value, false, false
		}
		v := w.one[0]
		return v, v == nil, true
	}
	v := w.masker.Text(value)
	return v, false, !same(v, value)
}

// plan returns the masking plan of a hash field, as of a column named after
// it in a table named after the key.
func (w *walker) plan(table string, field []byte) protocols.RowMasker {
	k := table + "\x00" + string(field)
	if rm, ok := w.plans[k]; ok {
		return rm
	}
	if w.plans == nil || len(w.plans) >= maxPlans {
		w.plans = map[string]protocols.RowMasker{}
	}
	rm := w.masker.Plan([]protocols.Column{{Name: string(field), Table: table, Type: protocols.TypeText}})
	w.plans[k] = rm
	return rm
}

// redirect reports whether t is a Redis Cluster redirection (MOVED, ASK),
// which a client would follow to a node behind Airlock's back.
func redirect(t resp.Token) bool {
	if t.Kind != resp.SimpleError && t.Kind != resp.BulkError {
		return false
	}
	p := t.Payload
	return len(p) > 6 && (string(p[:6]) == "MOVED " || string(p[:4]) == "ASK ")
}

// same reports whether b is a itself, as Masker.Text returns an unchanged
// value.
func same(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// replyKind names a reply's type as the recording does.
func replyKind(t resp.Token) string {
	if t.IsNull() {
		return "null"
	}
	switch t.Kind {
	case resp.SimpleString:
		return "simple"
	case resp.SimpleError, resp.BulkError:
		return "error"
	case resp.Integer:
		return "integer"
	case resp.BulkString:
		return "bulk"
	case resp.Boolean:
		return "bool"
	case resp.Double:
		return "double"
	case resp.BigNumber:
		return "bignum"
	case resp.Verbatim:
		return "verbatim"
	case resp.Array:
		return "array"
	case resp.Map:
		return "map"
	case resp.Set:
		return "set"
	case resp.Push:
		return "push"
	}
	return t.Kind.String()
}
