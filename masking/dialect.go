package masking

import "github.com/airlock-gw/airlock/protocols"

// Dialect is how one wire protocol spells what the core cannot read alone:
// its encodings of byte strings and arrays, and the messages in which its
// server repeats column values. A connection's Source is built with its
// protocol's dialect (masking/pgcodec for PostgreSQL), or with none when
// the protocol's values are plain bytes. A Dialect is immutable and safe
// for concurrent use.
type Dialect interface {
	// Codec returns the codec of column col's values, or nil to leave them
	// to the core: opaque bytes, scanned as they are and nulled on a hit
	// (nulled outright under a column rule). The core asks only about
	// columns of TypeBytes and TypeArray, once per result set. rule is true
	// when a column rule masks col with a replacing strategy: the codec
	// then has Cell.Mask replace every part whole. A codec is used by the
	// one goroutine that masks the result set.
	Codec(col protocols.Column, rule bool) Codec
	// AppendQuotes appends to dst the places where the free text msg (an
	// error message, a notice) repeats column values, in any order. Text
	// masks them when column rules exist, so a rule-masked value does not
	// come back through a constraint violation's message.
	AppendQuotes(dst []Quote, msg []byte) []Quote
}

// Codec masks values of one column in its protocol's encoding: it decodes
// the parts that hold text (array elements, the bytes under an escape
// form), has the Cell mask each, and encodes again only what changed.
type Codec interface {
	// MaskValue appends v's masked form to dst and returns it with
	// Replaced, or returns dst as it was with Kept (v unchanged), Nulled
	// (v becomes NULL) or Malformed (v is not in the form the codec
	// reads). A malformed value is scanned whole as opaque bytes, or
	// nulled under a column rule. c is valid only during the call.
	MaskValue(dst, v []byte, c *Cell) ([]byte, Outcome)
}

// Outcome is what masking did to a value or a part of one.
type Outcome uint8

// Masking outcomes.
const (
	Kept      Outcome = iota // unchanged
	Replaced                 // a replacement was written
	Nulled                   // becomes NULL
	Malformed                // does not parse as its type claims
)

// Quote is a place in a database message where the message repeats column
// values: msg[Start:End].
type Quote struct {
	Start, End int
	// Columns names the columns whose values these are, comma separated
	// as the message gives them (quoted or not); the values are masked
	// when one of them is under a column rule. Table rules match by their
	// column, since the message does not say the table.
	Columns string
	// Row marks a whole row quoted without its column names: the values
	// are masked whenever column rules exist.
	Row bool
}

// Cell is the masking a Codec applies to the parts of one value: the
// column's rule, or the connection's detectors. A RowMasker lends it to
// its codecs; it belongs to that RowMasker's goroutine.
type Cell struct {
	w     *worker
	act   action
	whole bool
}

// Whole reports that a column rule masks the column: Mask replaces every
// part it is given, whatever it holds.
func (c *Cell) Whole() bool { return c.whole }

// MayChange reports whether masking could change a part found in v. It is
// false when no rule applies and the detectors' prefilter rules v out, so a
// codec whose parts are substrings of v (its encoding only adds quotes and
// escapes) need not decode v at all.
func (c *Cell) MayChange(v []byte) bool {
	return c.whole || c.w.sc.d.pre.needsScan(v)
}

// Mask masks one part of the value as text: under a column rule the whole
// part is replaced, otherwise the entities detected in it. It returns
// Kept (nothing detected), Nulled (a detected entity's strategy is null:
// the part, or the value, must become NULL), or Replaced with the masked
// part, valid until the next call of Mask; the codec encodes it for its
// place in the value.
func (c *Cell) Mask(part []byte) ([]byte, Outcome) {
	w := c.w
	if c.whole {
		w.tmp2 = w.appendRule(w.tmp2[:0], part, c.act)
		return w.tmp2, Replaced
	}
	spans := w.sc.scan(part)
	if len(spans) == 0 {
		return nil, Kept
	}
	var null bool
	w.tmp2, null = w.appendMasked(w.tmp2[:0], part, spans, false)
	if null {
		return nil, Nulled
	}
	return w.tmp2, Replaced
}

// Opaque scans part as bytes no replacement could be valid for: Nulled
// when a detector fires (the value must become NULL), Kept otherwise.
// Under a column rule it is Nulled.
func (c *Cell) Opaque(part []byte) Outcome {
	if c.whole {
		return Nulled
	}
	return c.w.opaque(part)
}
