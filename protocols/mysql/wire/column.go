package wire

import (
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Column is a ColumnDefinition41. It is decoded by hand because go-mysql's
// Field.Parse indexes past the end of a truncated definition and drops the
// catalog, which re-encoding needs.
type Column struct {
	Catalog  []byte
	Schema   []byte
	Table    []byte
	OrgTable []byte
	Name     []byte
	OrgName  []byte
	Charset  uint16
	Length   uint32
	Type     byte
	Flags    uint16
	Decimals uint8
	// Default is the default value COM_FIELD_LIST appends; nil otherwise.
	Default []byte
}

// binaryCharset is the collation id of binary strings ("binary").
const binaryCharset = 63

// ParseColumn decodes a column definition. Its byte slices alias payload.
func ParseColumn(payload []byte) (*Column, error) {
	c := cursor{b: payload}
	col := &Column{
		Catalog:  c.lenencBytes("catalog", false),
		Schema:   c.lenencBytes("schema", false),
		Table:    c.lenencBytes("table", false),
		OrgTable: c.lenencBytes("org_table", false),
		Name:     c.lenencBytes("name", false),
		OrgName:  c.lenencBytes("org_name", false),
	}
	if n := c.lenenc("fixed fields length", false); c.err == nil && n != 0x0c {
		return nil, fmt.Errorf("%w: column fixed fields length %d, want 12", ErrMalformed, n)
	}
	col.Charset = c.u16("charset")
	col.Length = c.u32("column length")
	col.Type = c.u8("type")
	col.Flags = c.u16("flags")
	col.Decimals = c.u8("decimals")
	c.take(2, "filler")
	if c.remaining() > 0 {
		col.Default = c.lenencBytes("default", false)
	}
	if err := c.end("column definition"); err != nil {
		return nil, err
	}
	return col, nil
}

// AppendColumn appends col's definition to dst.
func AppendColumn(dst []byte, col *Column) []byte {
	for _, s := range [][]byte{col.Catalog, col.Schema, col.Table, col.OrgTable, col.Name, col.OrgName} {
		dst = appendLenencBytes(dst, s)
	}
	dst = append(dst, 0x0c)
	dst = appendU16(dst, col.Charset)
	dst = appendU32(dst, col.Length)
	dst = append(dst, col.Type)
	dst = appendU16(dst, col.Flags)
	dst = append(dst, col.Decimals, 0, 0)
	if col.Default != nil {
		dst = appendLenencBytes(dst, col.Default)
	}
	return dst
}

// Family is the neutral family of a column's type: enough for a masker to
// produce a replacement the client can still decode.
type Family uint8

// Type families.
const (
	FamilyOther  Family = iota // geometry, vector, NULL: replace with NULL
	FamilyText                 // char, varchar, text, enum, set
	FamilyJSON                 // MySQL's JSON type
	FamilyBytes                // binary, varbinary, blob, bit
	FamilyNumber               // integers, decimal, float, double
	FamilyBool                 // tinyint(1) and bit(1)
	FamilyTime                 // date, time, datetime, timestamp, year
)

var familyNames = [...]string{"other", "text", "json", "bytes", "number", "bool", "time"}

func (f Family) String() string {
	if int(f) < len(familyNames) {
		return familyNames[f]
	}
	return fmt.Sprintf("family(%d)", uint8(f))
}

// Family maps the column's type to its family. MariaDB's JSON is a LONGTEXT
// alias and arrives as text. TINYINT(1) counts as a boolean, as
// Connector/J reads it.
func (col *Column) Family() Family {
	switch col.Type {
	case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING, mysql.MYSQL_TYPE_STRING,
		mysql.MYSQL_TYPE_TINY_BLOB, mysql.MYSQL_TYPE_MEDIUM_BLOB, mysql.MYSQL_TYPE_LONG_BLOB,
		mysql.MYSQL_TYPE_BLOB:
		if col.Charset == binaryCharset && col.Flags&(mysql.ENUM_FLAG|mysql.SET_FLAG) == 0 {
			return FamilyBytes
		}
		return FamilyText
	case mysql.MYSQL_TYPE_ENUM, mysql.MYSQL_TYPE_SET:
		return FamilyText
	case mysql.MYSQL_TYPE_JSON:
		return FamilyJSON
	case mysql.MYSQL_TYPE_TINY:
		if col.Length == 1 {
			return FamilyBool
		}
		return FamilyNumber
	case mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_LONGLONG,
		mysql.MYSQL_TYPE_FLOAT, mysql.MYSQL_TYPE_DOUBLE, mysql.MYSQL_TYPE_DECIMAL, mysql.MYSQL_TYPE_NEWDECIMAL:
		return FamilyNumber
	case mysql.MYSQL_TYPE_BIT:
		if col.Length == 1 {
			return FamilyBool
		}
		return FamilyBytes
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_NEWDATE, mysql.MYSQL_TYPE_TIME, mysql.MYSQL_TYPE_TIME2,
		mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_DATETIME2, mysql.MYSQL_TYPE_TIMESTAMP,
		mysql.MYSQL_TYPE_TIMESTAMP2, mysql.MYSQL_TYPE_YEAR:
		return FamilyTime
	}
	return FamilyOther
}

// NativeType is an opaque id of the column's exact type for recordings and
// replays: the type byte, with bit 8 set for UNSIGNED and bit 9 for a
// binary collation. SplitNativeType takes it apart.
func (col *Column) NativeType() uint32 {
	id := uint32(col.Type)
	if col.Flags&mysql.UNSIGNED_FLAG != 0 {
		id |= 1 << 8
	}
	if col.Charset == binaryCharset {
		id |= 1 << 9
	}
	return id
}

// SplitNativeType undoes NativeType.
func SplitNativeType(id uint32) (typ byte, unsigned, binary bool) {
	return byte(id), id&(1<<8) != 0, id&(1<<9) != 0
}
