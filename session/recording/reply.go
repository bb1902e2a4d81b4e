package recording

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/airlock-gw/airlock/protocols"
)

// Reply implements protocols.Recorder. A reply counts as one row of the
// command before it for the rows mode: none keeps no values, first keeps
// the first first_rows values of each of the command's first first_rows
// replies, all keeps every value; the kind and the count are always kept,
// and so is an error reply's message, as a result frame keeps its error.
func (r *recorder) Reply(rep protocols.Reply) error {
	n := r.rows.Add(1)
	values := rep.Values[:min(len(rep.Values), r.replyValues(n, rep.Kind))]
	count := max(rep.Count, int64(len(rep.Values)))
	return r.fitted(FrameReply, func(b []byte, _ int) []byte { return appendReply(b, rep.Kind, count, values) })
}

// replyValues is how many values the rows mode keeps of the n-th reply
// since the last command.
func (r *recorder) replyValues(n int64, kind string) int {
	switch {
	case kind == "error" || r.mode == RowsAll:
		return math.MaxInt
	case r.mode == RowsFirst && n <= int64(r.firstN):
		return r.firstN
	}
	return 0
}

// appendReply encodes: kind, count, then the values kept as a row frame
// encodes its values. Each value is cut to maxValue; values past the frame
// budget are left out whole (a reply can have millions), which count
// shows.
func appendReply(b []byte, kind string, count int64, values [][]byte) []byte {
	b = appendStr(b, kind, maxName)
	n, budget := 0, maxFrameBody-64-maxName
	for _, v := range values {
		if budget -= valueCost(v); budget < 0 {
			break
		}
		n++
	}
	b = binary.AppendUvarint(b, uint64(max(count, int64(n))))
	b = binary.AppendUvarint(b, uint64(n))
	for _, v := range values[:n] {
		b, _ = appendValue(b, v, maxValue)
	}
	return b
}

// valueCost bounds the bytes appendValue writes for v.
func valueCost(v []byte) int {
	if v == nil {
		return 1
	}
	kept := min(len(v), maxValue)
	cost := kept + uvarintLen(uint64(kept)<<1+2)
	if kept < len(v) {
		cost += binary.MaxVarintLen64
	}
	return cost
}

func uvarintLen(x uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], x)
}

// ReplyRecord is a recorded reply: its kind, how many values it had and
// the values kept, masked.
type ReplyRecord struct {
	Kind   string
	Count  int64
	Values []Value
}

// replyHead reads a reply payload's kind and count; rest holds the values
// as a row payload does.
func replyHead(p []byte) (kind []byte, count int64, rest []byte, err error) {
	d := dec{b: p}
	kind = d.bytes(d.uvarint())
	c := d.uvarint()
	if d.bad || c > math.MaxInt64 {
		return nil, 0, nil, errPayload
	}
	return kind, int64(c), d.b, nil
}

func decodeReply(p []byte) (*ReplyRecord, error) {
	kind, count, rest, err := replyHead(p)
	if err != nil {
		return nil, err
	}
	vals, err := decodeRow(rest)
	if err != nil || int64(len(vals)) > count {
		return nil, errPayload
	}
	return &ReplyRecord{Kind: string(kind), Count: count, Values: vals}, nil
}

// checkReply checks a reply payload as decodeReply would, without
// allocating.
func checkReply(p []byte) error {
	_, count, rest, err := replyHead(p)
	if err != nil {
		return err
	}
	if n, k := binary.Uvarint(rest); k > 0 && n > uint64(count) {
		return errPayload
	}
	return checkRow(rest)
}

// replyText renders a reply: "bulk: value" for a single value, otherwise
// its kind and count, then one numbered line per value kept, each shown as
// a row's cell is.
func (p *textPrinter) replyText(rep *ReplyRecord) string {
	var b strings.Builder
	b.WriteString(esc(orDash(rep.Kind)))
	if rep.Count == 1 && len(rep.Values) == 1 {
		b.WriteString(": " + p.bytesCell(rep.Values[0]))
		return b.String()
	}
	if rep.Count > 0 || len(rep.Values) > 0 {
		fmt.Fprintf(&b, ", %d value%s", rep.Count, plural(rep.Count))
	}
	if int64(len(rep.Values)) < rep.Count {
		fmt.Fprintf(&b, " (%d recorded)", len(rep.Values))
	}
	for i, v := range rep.Values {
		fmt.Fprintf(&b, "\n%s          %d) %s", indent, i+1, p.bytesCell(v))
	}
	return b.String()
}

type jsonReply struct {
	jsonBase
	Kind   string `json:"kind"`
	Count  int64  `json:"count"`
	Values []any  `json:"values"`
}

func newJSONReply(b jsonBase, rep *ReplyRecord) jsonReply {
	vals := make([]any, len(rep.Values))
	for i, v := range rep.Values {
		vals[i] = rowValue(v)
	}
	return jsonReply{b, rep.Kind, rep.Count, vals}
}
