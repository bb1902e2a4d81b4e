package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// ErrMalformed reports a payload that does not follow the protocol.
var ErrMalformed = errors.New("malformed mysql packet")

// cursor reads protocol fields from a payload with bounds checks. It is
// written by hand because go-mysql's LengthEncodedInt and Field.Parse index
// past the end of a truncated payload (a panic on hostile input) and accept
// lengths that overflow int. The first failure sticks: later reads return
// zero values and err keeps the first cause, so decoders check once.
type cursor struct {
	b   []byte
	pos int
	err error
}

func (c *cursor) fail(what string) {
	if c.err == nil {
		c.err = fmt.Errorf("%w: %s at offset %d", ErrMalformed, what, c.pos)
	}
}

func (c *cursor) remaining() int {
	if c.err != nil {
		return 0
	}
	return len(c.b) - c.pos
}

// take returns the next n bytes, aliasing the payload.
func (c *cursor) take(n int, what string) []byte {
	if c.err != nil {
		return nil
	}
	if n < 0 || n > len(c.b)-c.pos {
		c.fail("truncated " + what)
		return nil
	}
	v := c.b[c.pos : c.pos+n : c.pos+n]
	c.pos += n
	return v
}

func (c *cursor) u8(what string) byte {
	if v := c.take(1, what); v != nil {
		return v[0]
	}
	return 0
}

func (c *cursor) u16(what string) uint16 {
	if v := c.take(2, what); v != nil {
		return binary.LittleEndian.Uint16(v)
	}
	return 0
}

func (c *cursor) u32(what string) uint32 {
	if v := c.take(4, what); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

// lenenc reads a length-encoded integer. 0xFB (NULL) and 0xFF (an ERR
// marker) are not integers; callers that give 0xFB a meaning check for it
// first. With canonical set, an integer written in more bytes than it needs
// is malformed: servers never send one, and refusing it keeps a decoded row
// re-encodable byte for byte.
func (c *cursor) lenenc(what string, canonical bool) uint64 {
	first := c.u8(what)
	if c.err != nil {
		return 0
	}
	var v uint64
	switch first {
	case 0xfb, 0xff:
		c.pos--
		c.fail(fmt.Sprintf("invalid length-encoded %s 0x%02x", what, first))
		return 0
	case 0xfc:
		v = uint64(c.u16(what))
	case 0xfd:
		if b := c.take(3, what); b != nil {
			v = uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16
		}
	case 0xfe:
		if b := c.take(8, what); b != nil {
			v = binary.LittleEndian.Uint64(b)
		}
	default:
		return uint64(first)
	}
	if canonical && c.err == nil && lenencSize(v) != lenencWidth(first) {
		c.fail("non-canonical length-encoded " + what)
	}
	return v
}

// lenencBytes reads a length-encoded string; the result is never nil, so an
// empty value stays distinct from NULL.
func (c *cursor) lenencBytes(what string, canonical bool) []byte {
	n := c.lenenc(what, canonical)
	if c.err != nil {
		return nil
	}
	if n > uint64(len(c.b)-c.pos) {
		c.fail("truncated " + what)
		return nil
	}
	return c.take(int(n), what)
}

// nulString reads a NUL-terminated string. With optional set, a string that
// runs to the end of the payload without its NUL is accepted: clients omit
// the last terminator of a handshake response.
func (c *cursor) nulString(what string, optional bool) []byte {
	if c.err != nil {
		return nil
	}
	i := bytes.IndexByte(c.b[c.pos:], 0)
	if i < 0 {
		if !optional {
			c.fail("unterminated " + what)
			return nil
		}
		i = len(c.b) - c.pos
		v := c.b[c.pos:len(c.b):len(c.b)]
		c.pos = len(c.b)
		return v
	}
	v := c.b[c.pos : c.pos+i : c.pos+i]
	c.pos += i + 1
	return v
}

// rest returns everything left.
func (c *cursor) rest() []byte {
	if c.err != nil {
		return nil
	}
	v := c.b[c.pos:len(c.b):len(c.b)]
	c.pos = len(c.b)
	return v
}

// end fails unless the payload is used up: trailing bytes mean the decoder
// and the sender disagree about the layout.
func (c *cursor) end(what string) error {
	if c.err == nil && c.pos != len(c.b) {
		c.fail(fmt.Sprintf("%d trailing bytes after %s", len(c.b)-c.pos, what))
	}
	return c.err
}

// lenencSize is the number of bytes n takes as a length-encoded integer.
func lenencSize(n uint64) int {
	switch {
	case n < 251:
		return 1
	case n <= 0xffff:
		return 3
	case n <= 0xffffff:
		return 4
	}
	return 9
}

// lenencWidth is the size of a length-encoded integer that starts with first.
func lenencWidth(first byte) int {
	switch first {
	case 0xfc:
		return 3
	case 0xfd:
		return 4
	case 0xfe:
		return 9
	}
	return 1
}

func appendLenenc(dst []byte, n uint64) []byte { return mysql.AppendLengthEncodedInteger(dst, n) }

func appendLenencBytes(dst, b []byte) []byte {
	return append(mysql.AppendLengthEncodedInteger(dst, uint64(len(b))), b...)
}

func appendNul(dst []byte, s string) []byte { return append(append(dst, s...), 0) }

func appendU16(dst []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(dst, v) }

func appendU32(dst []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(dst, v) }
