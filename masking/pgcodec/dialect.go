package pgcodec

import (
	"github.com/airlock-gw/airlock/masking"
	"github.com/airlock-gw/airlock/protocols"
)

// Dialect is PostgreSQL's masking.Dialect: array literals and binary
// arrays, bytea's text output, and the values error messages quote.
type Dialect struct{}

var _ masking.Dialect = Dialect{}

// Codec returns the codec of a PostgreSQL column: array literals and
// binary arrays, bytea in text output. A binary bytea is its raw bytes,
// which the core reads as they are; under a column rule a binary array or
// a bytea becomes NULL (no replacement would be valid for it).
func (Dialect) Codec(col protocols.Column, rule bool) masking.Codec {
	switch {
	case col.Type == protocols.TypeArray && !col.Binary:
		return &arrayText{}
	case col.Type == protocols.TypeArray && !rule:
		return binaryArray{}
	case col.Type == protocols.TypeBytes && !col.Binary && !rule:
		return &byteaText{}
	}
	return nil
}

// maxRetained bounds the buffers a codec keeps between values, as the
// core bounds its own: one huge value must not pin its memory for the
// rest of the session.
const maxRetained = 1 << 20

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isOctal(c byte) bool { return c >= '0' && c <= '7' }
func isHex(c byte) bool   { return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f') }

// equalFold reports whether b equals the lower-case ASCII word w, ignoring
// case.
func equalFold(b []byte, w string) bool {
	if len(b) != len(w) {
		return false
	}
	for i := range b {
		if b[i]|0x20 != w[i] {
			return false
		}
	}
	return true
}
