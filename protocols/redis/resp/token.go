package resp

import (
	"bytes"
	"math"
	"strconv"
)

// Kind is a RESP type, named by the byte that starts it on the wire.
type Kind byte

// The RESP2 types, then those RESP3 added.
const (
	SimpleString Kind = '+'
	SimpleError  Kind = '-'
	Integer      Kind = ':'
	BulkString   Kind = '$' // also RESP2's null bulk string, $-1
	Array        Kind = '*' // also RESP2's null array, *-1

	Null      Kind = '_'
	Boolean   Kind = '#'
	Double    Kind = ','
	BigNumber Kind = '('
	BulkError Kind = '!'
	Verbatim  Kind = '='
	Map       Kind = '%'
	Set       Kind = '~'
	Attribute Kind = '|'
	Push      Kind = '>'
)

var kindNames = map[Kind]string{
	SimpleString: "simple string", SimpleError: "simple error", Integer: "integer",
	BulkString: "bulk string", Array: "array", Null: "null", Boolean: "boolean",
	Double: "double", BigNumber: "big number", BulkError: "bulk error",
	Verbatim: "verbatim string", Map: "map", Set: "set", Attribute: "attribute",
	Push: "push",
}

// knownKind is kindNames as a table, looked up for every token.
var knownKind = func() (known [256]bool) {
	for k := range kindNames {
		known[k] = true
	}
	return known
}()

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return "kind " + strconv.QuoteRune(rune(k))
}

// Aggregate reports whether k has elements rather than a payload.
func (k Kind) Aggregate() bool {
	switch k {
	case Array, Map, Set, Attribute, Push:
		return true
	}
	return false
}

// Part says which piece of a value a token is. Bulk strings, bulk errors and
// verbatim strings longer than the decoder's chunk size come as PartBegin
// (the header), any number of PartChunk (the payload in pieces) and PartEnd
// (the closing CRLF); everything else comes whole.
type Part uint8

// The parts of a value.
const (
	PartWhole Part = iota
	PartBegin
	PartChunk
	PartEnd
)

// Token is one step of a reply: a scalar, the header of an aggregate, or a
// piece of a long bulk string. Its slices are valid until the decoder's
// next call.
type Token struct {
	Kind Kind
	Part Part
	// Len is the length declared on the wire: a bulk's payload bytes (a
	// verbatim string's include its "txt:" prefix), an aggregate's element
	// count (pairs for a map or an attribute), or -1 for RESP2's nulls.
	Len int64
	// Payload is the value without type byte, length or CRLF: the text of a
	// simple string or error, the digits of an integer, double or big
	// number, "t" or "f", a whole bulk's bytes or a chunk's, a verbatim
	// string's text after its format prefix. Empty for the rest.
	Payload []byte
	// Format is a verbatim string's three-byte format ("txt", "mkd").
	Format []byte
	// Raw is the token's exact bytes on the wire; the Raw of every token of
	// a reply, concatenated, is the reply.
	Raw []byte
	// Depth is the number of aggregates the token is inside.
	Depth int
	// Attr marks a token of an attribute: metadata that precedes the value
	// it annotates and is not part of it.
	Attr bool
	// Push marks a token of a push message (pub/sub, client tracking): data
	// the server sends out of band, not the reply to a command. RESP2 has no
	// push type; its pub/sub messages are arrays the caller must recognise.
	Push bool
	// Complete marks the last token of a top-level reply or push message,
	// never of an attribute, whose value follows it.
	Complete bool
}

// IsNull reports whether t is a null: RESP3's _, or RESP2's $-1 or *-1.
func (t Token) IsNull() bool { return t.Kind == Null || t.Len < 0 }

// Int returns an integer's value.
func (t Token) Int() (int64, error) { return strconv.ParseInt(string(t.Payload), 10, 64) }

// Bool returns a boolean's value.
func (t Token) Bool() bool { return len(t.Payload) == 1 && t.Payload[0] == 't' }

// Float returns a double's value.
func (t Token) Float() (float64, error) {
	p := t.Payload
	if bytes.Equal(p, []byte("nan")) || bytes.Equal(p, []byte("-nan")) {
		return math.NaN(), nil
	}
	return strconv.ParseFloat(string(p), 64)
}

// validScalar reports whether p is a valid payload for a line-based kind.
func validScalar(k Kind, p []byte) bool {
	switch k {
	case SimpleString, SimpleError:
		return bytes.IndexByte(p, '\r') < 0 && bytes.IndexByte(p, '\n') < 0
	case Integer:
		return validInteger(p)
	case BigNumber:
		return validDigits(p)
	case Double:
		return validDouble(p)
	case Boolean:
		return len(p) == 1 && (p[0] == 't' || p[0] == 'f')
	case Null:
		return len(p) == 0
	}
	return false
}

// validDigits reports whether p is an optional sign and at least one digit.
func validDigits(p []byte) bool {
	if len(p) > 0 && (p[0] == '-' || p[0] == '+') {
		p = p[1:]
	}
	return len(p) > 0 && allDigits(p)
}

func allDigits(p []byte) bool {
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// validInteger is validDigits within a signed 64-bit integer, as the spec
// requires of RESP integers.
func validInteger(p []byte) bool {
	if !validDigits(p) {
		return false
	}
	_, err := strconv.ParseInt(string(p), 10, 64)
	return err == nil
}

// validDouble checks the spec's grammar,
// [+|-]digits[.digits][(e|E)[+|-]digits], and its inf, -inf and nan. It also
// takes +inf and -nan, which C's printf produces.
func validDouble(p []byte) bool {
	switch string(p) {
	case "inf", "+inf", "-inf", "nan", "-nan":
		return true
	}
	if len(p) > 0 && (p[0] == '-' || p[0] == '+') {
		p = p[1:]
	}
	p, ok := digitRun(p)
	if !ok {
		return false
	}
	if len(p) > 0 && p[0] == '.' {
		if p, ok = digitRun(p[1:]); !ok {
			return false
		}
	}
	if len(p) > 0 && (p[0] == 'e' || p[0] == 'E') {
		p = p[1:]
		if len(p) > 0 && (p[0] == '-' || p[0] == '+') {
			p = p[1:]
		}
		if p, ok = digitRun(p); !ok {
			return false
		}
	}
	return len(p) == 0
}

// digitRun consumes one or more digits at the start of p.
func digitRun(p []byte) ([]byte, bool) {
	i := 0
	for i < len(p) && p[i] >= '0' && p[i] <= '9' {
		i++
	}
	return p[i:], i > 0
}
