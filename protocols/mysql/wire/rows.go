package wire

import (
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Rows are split into raw values by hand: go-mysql's RowData.Parse turns
// them into typed FieldValues, which cannot be re-encoded byte for byte,
// and indexes past the end of a truncated row.

// nullValue marks NULL in a text-protocol row.
const nullValue = 0xfb

// DecodeTextRow splits a text-protocol row of ncols columns into values,
// nil for NULL (an empty value is a non-nil empty slice). Values alias
// payload; dst is reused when it has room.
func DecodeTextRow(payload []byte, ncols int, dst [][]byte) ([][]byte, error) {
	dst = dst[:0]
	c := cursor{b: payload}
	for range ncols {
		if c.remaining() > 0 && payload[c.pos] == nullValue {
			c.pos++
			dst = append(dst, nil)
			continue
		}
		v := c.lenencBytes("text value", true)
		if c.err != nil {
			return nil, c.err
		}
		dst = append(dst, v)
	}
	if err := c.end("text row"); err != nil {
		return nil, err
	}
	return dst, nil
}

// AppendTextRow appends a text-protocol row of values (nil for NULL) to dst.
func AppendTextRow(dst []byte, values [][]byte) []byte {
	for _, v := range values {
		if v == nil {
			dst = append(dst, nullValue)
			continue
		}
		dst = appendLenencBytes(dst, v)
	}
	return dst
}

// binaryLayout says how a value of type typ is laid out in the binary
// protocol (rows and COM_STMT_EXECUTE parameters).
type binaryLayout uint8

const (
	layoutLenenc   binaryLayout = iota // length-encoded string: text, blobs, JSON, decimal, bit, geometry
	layoutFixed                        // fixed-size little-endian number
	layoutTemporal                     // one length byte, then the fields present
)

// binaryFormat returns typ's layout, and its size for layoutFixed.
func binaryFormat(typ byte) (binaryLayout, int) {
	switch typ {
	case mysql.MYSQL_TYPE_NULL:
		return layoutFixed, 0
	case mysql.MYSQL_TYPE_TINY:
		return layoutFixed, 1
	case mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_YEAR:
		return layoutFixed, 2
	case mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_FLOAT:
		return layoutFixed, 4
	case mysql.MYSQL_TYPE_LONGLONG, mysql.MYSQL_TYPE_DOUBLE:
		return layoutFixed, 8
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_NEWDATE, mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_DATETIME2,
		mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIMESTAMP2, mysql.MYSQL_TYPE_TIME, mysql.MYSQL_TYPE_TIME2:
		return layoutTemporal, 0
	}
	return layoutLenenc, 0
}

// validTemporalLen reports whether n is a length the binary protocol allows
// for a temporal of type typ: dates and datetimes send 0, 4, 7 or 11 bytes,
// times 0, 8 or 12.
func validTemporalLen(typ byte, n int) bool {
	if typ == mysql.MYSQL_TYPE_TIME || typ == mysql.MYSQL_TYPE_TIME2 {
		return n == 0 || n == 8 || n == 12
	}
	return n == 0 || n == 4 || n == 7 || n == 11
}

// readBinaryValue reads one non-NULL binary-protocol value of type typ.
// Numbers keep their raw bytes; a temporal's value is its fields without
// the length byte; strings are the bytes inside the length.
func readBinaryValue(c *cursor, typ byte) []byte {
	layout, size := binaryFormat(typ)
	switch layout {
	case layoutFixed:
		return c.take(size, "binary number")
	case layoutTemporal:
		n := int(c.u8("temporal length"))
		if c.err == nil && !validTemporalLen(typ, n) {
			c.pos--
			c.fail(fmt.Sprintf("temporal length %d for type 0x%02x", n, typ))
			return nil
		}
		return c.take(n, "temporal value")
	}
	return c.lenencBytes("binary value", true)
}

// appendBinaryValue appends v as a binary-protocol value of type typ. A
// number or temporal of the wrong size is an error: masking replaces only
// length-encoded values.
func appendBinaryValue(dst []byte, typ byte, v []byte) ([]byte, error) {
	layout, size := binaryFormat(typ)
	switch layout {
	case layoutFixed:
		if len(v) != size {
			return dst, fmt.Errorf("binary value of type 0x%02x has %d bytes, want %d", typ, len(v), size)
		}
		return append(dst, v...), nil
	case layoutTemporal:
		if !validTemporalLen(typ, len(v)) {
			return dst, fmt.Errorf("temporal value of type 0x%02x has %d bytes", typ, len(v))
		}
		return append(append(dst, byte(len(v))), v...), nil
	}
	return appendLenencBytes(dst, v), nil
}

// nullBitmapLen is the size of a NULL bitmap for n values whose bits start
// at offset: 2 in binary rows, 0 in COM_STMT_EXECUTE.
func nullBitmapLen(n, offset int) int { return (n + offset + 7) / 8 }

func isNull(bitmap []byte, i, offset int) bool {
	bit := i + offset
	return bitmap[bit/8]&(1<<(bit%8)) != 0
}

// DecodeBinaryRow splits a binary-protocol row into values, one per column
// of the given types (Column.Type), nil for NULL. Values alias payload; dst
// is reused when it has room. Bits of the NULL bitmap outside the columns
// must be clear, so that AppendBinaryRow reproduces the row exactly.
func DecodeBinaryRow(payload []byte, types []byte, dst [][]byte) ([][]byte, error) {
	dst = dst[:0]
	c := cursor{b: payload}
	if h := c.u8("row header"); c.err == nil && h != mysql.OK_HEADER {
		return nil, fmt.Errorf("%w: binary row header 0x%02x", ErrMalformed, h)
	}
	bitmap := c.take(nullBitmapLen(len(types), 2), "null bitmap")
	if c.err != nil {
		return nil, c.err
	}
	if err := checkBitmapPadding(bitmap, len(types), 2); err != nil {
		return nil, err
	}
	for i, typ := range types {
		if isNull(bitmap, i, 2) {
			dst = append(dst, nil)
			continue
		}
		v := readBinaryValue(&c, typ)
		if c.err != nil {
			return nil, c.err
		}
		dst = append(dst, v)
	}
	if err := c.end("binary row"); err != nil {
		return nil, err
	}
	return dst, nil
}

// checkBitmapPadding fails when a bit outside the n values is set.
func checkBitmapPadding(bitmap []byte, n, offset int) error {
	for bit := 0; bit < len(bitmap)*8; bit++ {
		if (bit < offset || bit >= n+offset) && bitmap[bit/8]&(1<<(bit%8)) != 0 {
			return fmt.Errorf("%w: null bitmap bit %d set outside the values", ErrMalformed, bit)
		}
	}
	return nil
}

// AppendBinaryRow appends a binary-protocol row of values (nil for NULL)
// for columns of the given types to dst.
func AppendBinaryRow(dst []byte, types []byte, values [][]byte) ([]byte, error) {
	if len(values) != len(types) {
		return dst, fmt.Errorf("binary row of %d values for %d columns", len(values), len(types))
	}
	dst = append(dst, mysql.OK_HEADER)
	start := len(dst)
	dst = append(dst, make([]byte, nullBitmapLen(len(types), 2))...)
	var err error
	for i, v := range values {
		if v == nil {
			dst[start+(i+2)/8] |= 1 << ((i + 2) % 8)
			continue
		}
		if dst, err = appendBinaryValue(dst, types[i], v); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// Types returns the type of each column, as the binary row codec takes them.
func Types(cols []*Column) []byte {
	types := make([]byte, len(cols))
	for i, col := range cols {
		types[i] = col.Type
	}
	return types
}
