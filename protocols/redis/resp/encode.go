package resp

import (
	"errors"
	"math"
	"strconv"
)

// Proto is the protocol version a client chose: 2 until it sends HELLO 3.
type Proto int

// The protocol versions.
const (
	RESP2 Proto = 2
	RESP3 Proto = 3
)

// The Append functions write one value each, as Redis writes it in either
// protocol version. Texts that go on a line (simple strings and errors) have
// CR and LF replaced by spaces, as Redis does with error texts, so a message
// that quotes client input can never break the framing.

// AppendSimple appends the simple string s ("+OK").
func AppendSimple(dst []byte, s string) []byte {
	return appendLine(append(dst, '+'), s)
}

// AppendError appends the error msg, which starts with its code:
// AppendError(dst, "NOAUTH Authentication required.").
func AppendError(dst []byte, msg string) []byte {
	return appendLine(append(dst, '-'), msg)
}

// AppendInt appends the integer n.
func AppendInt(dst []byte, n int64) []byte {
	return appendHeader(dst, Integer, n)
}

// AppendBulk appends b as a bulk string.
func AppendBulk(dst, b []byte) []byte {
	dst = appendHeader(dst, BulkString, int64(len(b)))
	return append(append(dst, b...), '\r', '\n')
}

// AppendBulkString appends s as a bulk string.
func AppendBulkString(dst []byte, s string) []byte {
	dst = appendHeader(dst, BulkString, int64(len(s)))
	return append(append(dst, s...), '\r', '\n')
}

// AppendBulkHeader appends the header of a bulk string of n bytes, for a
// payload the caller writes itself, followed by CRLF.
func AppendBulkHeader(dst []byte, n int64) []byte {
	return appendHeader(dst, BulkString, n)
}

// AppendNull appends a null: $-1 in RESP2, _ in RESP3.
func AppendNull(dst []byte, p Proto) []byte {
	if p >= RESP3 {
		return append(dst, "_\r\n"...)
	}
	return append(dst, "$-1\r\n"...)
}

// AppendNullArray appends a null array: *-1 in RESP2, _ in RESP3.
func AppendNullArray(dst []byte, p Proto) []byte {
	if p >= RESP3 {
		return append(dst, "_\r\n"...)
	}
	return append(dst, "*-1\r\n"...)
}

// AppendArrayHeader appends the header of an array of n elements.
func AppendArrayHeader(dst []byte, n int) []byte {
	return appendHeader(dst, Array, int64(n))
}

// AppendMapHeader appends the header of a map of n pairs: %n in RESP3, an
// array of 2n elements in RESP2.
func AppendMapHeader(dst []byte, n int, p Proto) []byte {
	if p >= RESP3 {
		return appendHeader(dst, Map, int64(n))
	}
	return appendHeader(dst, Array, 2*int64(n))
}

// AppendSetHeader appends the header of a set of n elements: ~n in RESP3,
// an array in RESP2.
func AppendSetHeader(dst []byte, n int, p Proto) []byte {
	if p >= RESP3 {
		return appendHeader(dst, Set, int64(n))
	}
	return appendHeader(dst, Array, int64(n))
}

// AppendPushHeader appends the header of a push message of n elements: >n
// in RESP3, an array in RESP2, where pub/sub messages are arrays.
func AppendPushHeader(dst []byte, n int, p Proto) []byte {
	if p >= RESP3 {
		return appendHeader(dst, Push, int64(n))
	}
	return appendHeader(dst, Array, int64(n))
}

// AppendAttributeHeader appends the header of an attribute of n pairs. RESP2
// has no attributes: a RESP2 client must not be sent one.
func AppendAttributeHeader(dst []byte, n int) []byte {
	return appendHeader(dst, Attribute, int64(n))
}

// AppendDouble appends f: a double in RESP3, a bulk string in RESP2, both
// with inf, -inf and nan spelled as Redis spells them.
func AppendDouble(dst []byte, f float64, p Proto) []byte {
	var text [32]byte
	s := appendFloat(text[:0], f)
	if p >= RESP3 {
		dst = append(append(dst, byte(Double)), s...)
		return append(dst, '\r', '\n')
	}
	return AppendBulk(dst, s)
}

func appendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(dst, "inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-inf"...)
	case math.IsNaN(f):
		return append(dst, "nan"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// AppendBool appends b: #t or #f in RESP3, the integer 1 or 0 in RESP2.
func AppendBool(dst []byte, b bool, p Proto) []byte {
	switch {
	case p < RESP3 && b:
		return append(dst, ":1\r\n"...)
	case p < RESP3:
		return append(dst, ":0\r\n"...)
	case b:
		return append(dst, "#t\r\n"...)
	}
	return append(dst, "#f\r\n"...)
}

// AppendBigNumber appends the integer written in digits (an optional sign
// and decimal digits): a big number in RESP3, a bulk string in RESP2.
func AppendBigNumber(dst []byte, digits string, p Proto) []byte {
	if p >= RESP3 {
		return appendLine(append(dst, byte(BigNumber)), digits)
	}
	return AppendBulkString(dst, digits)
}

// AppendBulkError appends the error msg as a bulk error in RESP3, where it
// may span lines, and as a simple error in RESP2.
func AppendBulkError(dst []byte, msg string, p Proto) []byte {
	if p < RESP3 {
		return AppendError(dst, msg)
	}
	dst = appendHeader(dst, BulkError, int64(len(msg)))
	return append(append(dst, msg...), '\r', '\n')
}

// AppendVerbatim appends text as a verbatim string of the three-letter
// format ("txt", "mkd") in RESP3, and as a bulk string in RESP2, as Redis
// does for INFO. A format of another length is written as "txt".
func AppendVerbatim(dst []byte, format, text string, p Proto) []byte {
	if p < RESP3 {
		return AppendBulkString(dst, text)
	}
	if len(format) != 3 {
		format = "txt"
	}
	dst = appendHeader(dst, Verbatim, int64(len(text)+4))
	dst = append(append(append(dst, format...), ':'), text...)
	return append(dst, '\r', '\n')
}

// AppendCommand appends a command as clients send it, an array of bulk
// strings.
func AppendCommand(dst []byte, args ...string) []byte {
	dst = AppendArrayHeader(dst, len(args))
	for _, a := range args {
		dst = AppendBulkString(dst, a)
	}
	return dst
}

// AppendArgs appends a command given as an argument vector, such as
// RequestDecoder.Next returns.
func AppendArgs(dst []byte, args [][]byte) []byte {
	dst = AppendArrayHeader(dst, len(args))
	for _, a := range args {
		dst = AppendBulk(dst, a)
	}
	return dst
}

// ErrPayload is returned by AppendToken for a payload the token's kind
// cannot carry.
var ErrPayload = errors.New("resp: payload does not fit the token")

// AppendToken appends t re-encoded with payload in place of t.Payload,
// keeping its kind: a bulk string stays a bulk string, a simple string a
// simple string, a verbatim string keeps its format. This is how a masked
// value replaces the original. The payload must suit the kind (digits for
// an integer, no CR or LF in a simple string, the same length for a chunk
// of a streamed bulk, whose header is already out); otherwise AppendToken
// returns dst unchanged and ErrPayload. Aggregate headers, nulls and the
// begin and end of a streamed bulk have no payload and are re-encoded as
// they were. To replace a streamed bulk, drop its tokens from PartBegin on
// and write a new value instead: none of it has been relayed yet.
func AppendToken(dst []byte, t Token, payload []byte) ([]byte, error) {
	switch {
	case t.Part == PartChunk:
		if len(payload) != len(t.Payload) {
			return dst, ErrPayload
		}
		return append(dst, payload...), nil
	case t.Part == PartEnd:
		return append(dst, '\r', '\n'), nil
	case t.Part == PartBegin:
		dst = appendHeader(dst, t.Kind, t.Len)
		if t.Kind == Verbatim {
			dst = append(append(dst, t.Format...), ':')
		}
		return dst, nil
	case t.Kind.Aggregate() || t.Len < 0:
		return appendHeader(dst, t.Kind, t.Len), nil
	}
	switch t.Kind {
	case BulkString, BulkError:
		dst = appendHeader(dst, t.Kind, int64(len(payload)))
	case Verbatim:
		dst = appendHeader(dst, t.Kind, int64(len(payload)+4))
		dst = append(append(dst, t.Format...), ':')
	default:
		if !validScalar(t.Kind, payload) {
			return dst, ErrPayload
		}
		dst = append(dst, byte(t.Kind))
	}
	return append(append(dst, payload...), '\r', '\n'), nil
}

// appendHeader appends a type byte, a number and CRLF.
func appendHeader(dst []byte, k Kind, n int64) []byte {
	dst = strconv.AppendInt(append(dst, byte(k)), n, 10)
	return append(dst, '\r', '\n')
}

// appendLine appends s with CR and LF blanked, then CRLF.
func appendLine(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		dst = append(dst, c)
	}
	return append(dst, '\r', '\n')
}
