package recording

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
)

// MySQL column types whose binary-protocol form is not text
// (https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_binary_resultset.html).
const (
	myTiny      = 1
	myShort     = 2
	myLong      = 3
	myFloat     = 4
	myDouble    = 5
	myTimestamp = 7
	myLongLong  = 8
	myInt24     = 9
	myDate      = 10
	myTime      = 11
	myDatetime  = 12
	myYear      = 13
)

// myUnsigned is the bit of a MySQL native type id (the engine's
// Column.NativeType) that marks an UNSIGNED column.
const myUnsigned = 1 << 8

// mysqlBinaryText renders a MySQL value recorded in the binary protocol's
// form (numbers little-endian, temporals as their fields) as the text
// protocol would have sent it. Written by hand: this package reads
// recordings of every protocol and imports none of their engines. ok is
// false for a type whose binary form is already text (strings, decimals,
// JSON) or bytes of the wrong size.
func mysqlBinaryText(native uint32, b []byte) (string, bool) {
	unsigned := native&myUnsigned != 0
	le := binary.LittleEndian
	switch typ := byte(native); {
	case typ == myTiny && len(b) == 1:
		if unsigned {
			return strconv.FormatUint(uint64(b[0]), 10), true
		}
		return strconv.FormatInt(int64(int8(b[0])), 10), true
	case (typ == myShort || typ == myYear) && len(b) == 2:
		if unsigned || typ == myYear {
			return strconv.FormatUint(uint64(le.Uint16(b)), 10), true
		}
		return strconv.FormatInt(int64(int16(le.Uint16(b))), 10), true
	case (typ == myLong || typ == myInt24) && len(b) == 4:
		if unsigned {
			return strconv.FormatUint(uint64(le.Uint32(b)), 10), true
		}
		return strconv.FormatInt(int64(int32(le.Uint32(b))), 10), true
	case typ == myLongLong && len(b) == 8:
		if unsigned {
			return strconv.FormatUint(le.Uint64(b), 10), true
		}
		return strconv.FormatInt(int64(le.Uint64(b)), 10), true
	case typ == myFloat && len(b) == 4:
		return strconv.FormatFloat(float64(math.Float32frombits(le.Uint32(b))), 'g', -1, 32), true
	case typ == myDouble && len(b) == 8:
		return strconv.FormatFloat(math.Float64frombits(le.Uint64(b)), 'g', -1, 64), true
	case typ == myDate || typ == myDatetime || typ == myTimestamp:
		return mysqlDatetime(typ, b)
	case typ == myTime:
		return mysqlTime(b)
	}
	return "", false
}

// mysqlDatetime renders a DATE, DATETIME or TIMESTAMP: 0, 4, 7 or 11
// bytes of year, month, day, hour, minute, second, microseconds.
func mysqlDatetime(typ byte, b []byte) (string, bool) {
	var f [7]int
	switch len(b) {
	case 11:
		f[6] = int(binary.LittleEndian.Uint32(b[7:]))
		fallthrough
	case 7:
		f[3], f[4], f[5] = int(b[4]), int(b[5]), int(b[6])
		fallthrough
	case 4:
		f[0], f[1], f[2] = int(binary.LittleEndian.Uint16(b)), int(b[2]), int(b[3])
	case 0:
	default:
		return "", false
	}
	s := fmt.Sprintf("%04d-%02d-%02d", f[0], f[1], f[2])
	if typ != myDate {
		s += fmt.Sprintf(" %02d:%02d:%02d", f[3], f[4], f[5])
		if len(b) == 11 {
			s += fmt.Sprintf(".%06d", f[6])
		}
	}
	return s, true
}

// mysqlTime renders a TIME: 0, 8 or 12 bytes of sign, days, hours,
// minutes, seconds, microseconds.
func mysqlTime(b []byte) (string, bool) {
	switch len(b) {
	case 0:
		return "00:00:00", true
	case 8, 12:
	default:
		return "", false
	}
	sign := ""
	if b[0] == 1 {
		sign = "-"
	}
	hours := int(binary.LittleEndian.Uint32(b[1:]))*24 + int(b[5])
	s := fmt.Sprintf("%s%02d:%02d:%02d", sign, hours, b[6], b[7])
	if len(b) == 12 {
		s += fmt.Sprintf(".%06d", binary.LittleEndian.Uint32(b[8:]))
	}
	return s, true
}
