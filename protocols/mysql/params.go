package mysql

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/protocols/mysql/wire"
	"github.com/airlock-gw/airlock/session"
)

// A frontend's statement with parameters runs as a prepared statement on
// the runner's upstream session: COM_STMT_PREPARE of the text, one
// COM_STMT_EXECUTE with the values in the binary protocol (never written
// into the text), COM_STMT_CLOSE. The rows come back in the binary
// protocol and are turned into the text protocol's form, which masking
// reads and the frontend shows. The commands are encoded here by hand: the
// wire package decodes a client's, and go-mysql's client would need a
// connection of its own.

// binaryDef is what turning a binary result's values into text needs of
// a column.
type binaryDef struct {
	typ      byte
	unsigned bool
	decimals uint8
}

// errWrongArguments is MySQL's own error for a parameter count that does
// not match the statement's (ER_WRONG_ARGUMENTS).
const errWrongArguments = 1210

// runParams prepares text, runs it once with params and closes it.
func (r *runner) runParams(text string, params []engine.Param, res *session.Results) error {
	start := time.Now()
	if _, err := wire.WritePacket(r.up.Conn, 0, append([]byte{mysql.COM_STMT_PREPARE}, text...)); err != nil {
		return r.lost(err)
	}
	p, err := r.read()
	if err != nil {
		return err
	}
	if wire.ClassifyResponse(p) == wire.ResponseERR {
		return r.failed(p, res)
	}
	ok, err := wire.ParsePrepareOK(p)
	if err != nil {
		return r.lost(err)
	}
	if err := r.skipDefinitions(int(ok.Params)); err != nil {
		return err
	}
	if err := r.skipDefinitions(int(ok.Columns)); err != nil {
		return err
	}
	defer r.closeStatement(ok.StatementID)
	if int(ok.Params) != len(params) {
		msg := fmt.Sprintf("Incorrect arguments to the statement: it has %d placeholders (?) and %d params were given", ok.Params, len(params))
		if err := res.End(protocols.Result{Error: msg, Code: "HY000"}, start); err != nil {
			return err
		}
		return &UpstreamError{Code: errWrongArguments, State: "HY000", Message: msg}
	}
	if _, err := wire.WritePacket(r.up.Conn, 0, appendExecute(nil, ok.StatementID, params)); err != nil {
		return r.lost(err)
	}
	r.binary, r.defs = true, r.defs[:0]
	defer func() { r.binary = false }()
	for {
		r.defs, r.types = r.defs[:0], nil
		more, err := r.result(res)
		if err != nil || !more {
			return err
		}
	}
}

// skipDefinitions reads n parameter or column definitions of a
// COM_STMT_PREPARE response, and the EOF after them.
func (r *runner) skipDefinitions(n int) error {
	if n == 0 {
		return nil
	}
	if r.up.Capabilities&mysql.CLIENT_DEPRECATE_EOF == 0 {
		n++
	}
	for range n {
		if _, err := r.read(); err != nil {
			return err
		}
	}
	return nil
}

// closeStatement frees the statement upstream; COM_STMT_CLOSE has no
// answer. A failure shows on the next command.
func (r *runner) closeStatement(id uint32) {
	_, _ = wire.WritePacket(r.up.Conn, 0, binary.LittleEndian.AppendUint32([]byte{mysql.COM_STMT_CLOSE}, id))
}

// appendExecute appends a COM_STMT_EXECUTE of statement id with params,
// their types bound with it, and no cursor.
func appendExecute(dst []byte, id uint32, params []engine.Param) []byte {
	dst = append(dst, mysql.COM_STMT_EXECUTE)
	dst = binary.LittleEndian.AppendUint32(dst, id)
	dst = append(dst, 0)                           // CURSOR_TYPE_NO_CURSOR
	dst = binary.LittleEndian.AppendUint32(dst, 1) // iterations
	if len(params) == 0 {
		return dst
	}
	bitmap := len(dst)
	dst = append(dst, make([]byte, (len(params)+7)/8)...)
	dst = append(dst, 1) // new params bound
	values := make([][]byte, len(params))
	for i, p := range params {
		typ, unsigned, v := paramValue(p)
		flag := byte(0)
		if unsigned {
			flag = 0x80
		}
		dst = append(dst, typ, flag)
		if v == nil {
			dst[bitmap+i/8] |= 1 << (i % 8)
		}
		values[i] = v
	}
	for _, v := range values {
		dst = append(dst, v...)
	}
	return dst
}

// paramValue is a parameter's type and its binary-protocol value (nil for
// NULL). Integers go as BIGINT, other numbers as DECIMAL text (exact) or,
// with an exponent, as DOUBLE; strings as strings, which the server
// converts to the column's type as it would a quoted literal.
func paramValue(p engine.Param) (typ byte, unsigned bool, v []byte) {
	switch p.Kind {
	case engine.ParamNull:
		return mysql.MYSQL_TYPE_NULL, false, nil
	case engine.ParamBool:
		b := byte(0)
		if p.Text == "true" {
			b = 1
		}
		return mysql.MYSQL_TYPE_TINY, false, []byte{b}
	case engine.ParamNumber:
		if n, err := strconv.ParseInt(p.Text, 10, 64); err == nil {
			return mysql.MYSQL_TYPE_LONGLONG, false, binary.LittleEndian.AppendUint64(nil, uint64(n))
		}
		if n, err := strconv.ParseUint(p.Text, 10, 64); err == nil {
			return mysql.MYSQL_TYPE_LONGLONG, true, binary.LittleEndian.AppendUint64(nil, n)
		}
		if strings.ContainsAny(p.Text, "eE") {
			if f, err := strconv.ParseFloat(p.Text, 64); err == nil {
				return mysql.MYSQL_TYPE_DOUBLE, false, binary.LittleEndian.AppendUint64(nil, math.Float64bits(f))
			}
		}
		return mysql.MYSQL_TYPE_NEWDECIMAL, false, mysql.PutLengthEncodedString([]byte(p.Text))
	}
	return mysql.MYSQL_TYPE_STRING, false, mysql.PutLengthEncodedString([]byte(p.Text))
}

// decodeRow decodes one row of the result being read into values in the
// text protocol's form.
func (r *runner) decodeRow(p []byte, n int, values [][]byte) ([][]byte, error) {
	if !r.binary {
		return wire.DecodeTextRow(p, n, values)
	}
	if r.types == nil {
		r.types = make([]byte, len(r.defs))
		for i, d := range r.defs {
			r.types[i] = d.typ
		}
	}
	values, err := wire.DecodeBinaryRow(p, r.types, values)
	if err != nil {
		return nil, err
	}
	for i, v := range values {
		if v != nil {
			values[i] = binaryText(r.defs[i], v)
		}
	}
	return values, nil
}

// binaryText is a binary-protocol value as the text protocol sends it:
// numbers in decimal, temporals as MySQL writes them with the column's
// fractional digits. Strings, decimals, JSON and bits are the same in
// both.
func binaryText(d binaryDef, v []byte) []byte {
	le := binary.LittleEndian
	switch d.typ {
	case mysql.MYSQL_TYPE_TINY:
		if d.unsigned {
			return strconv.AppendUint(nil, uint64(v[0]), 10)
		}
		return strconv.AppendInt(nil, int64(int8(v[0])), 10)
	case mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_YEAR:
		if d.unsigned || d.typ == mysql.MYSQL_TYPE_YEAR {
			return strconv.AppendUint(nil, uint64(le.Uint16(v)), 10)
		}
		return strconv.AppendInt(nil, int64(int16(le.Uint16(v))), 10)
	case mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_LONG:
		if d.unsigned {
			return strconv.AppendUint(nil, uint64(le.Uint32(v)), 10)
		}
		return strconv.AppendInt(nil, int64(int32(le.Uint32(v))), 10)
	case mysql.MYSQL_TYPE_LONGLONG:
		if d.unsigned {
			return strconv.AppendUint(nil, le.Uint64(v), 10)
		}
		return strconv.AppendInt(nil, int64(le.Uint64(v)), 10)
	case mysql.MYSQL_TYPE_FLOAT:
		return floatText(float64(math.Float32frombits(le.Uint32(v))), 32)
	case mysql.MYSQL_TYPE_DOUBLE:
		return floatText(math.Float64frombits(le.Uint64(v)), 64)
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_NEWDATE:
		return dateText(nil, v)
	case mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_DATETIME2, mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIMESTAMP2:
		b := append(dateText(nil, v), ' ')
		var f [4]byte
		if len(v) >= 7 {
			copy(f[:3], v[4:7])
		}
		b = fmt.Appendf(b, "%02d:%02d:%02d", f[0], f[1], f[2])
		return fraction(b, v, 7, d.decimals)
	case mysql.MYSQL_TYPE_TIME, mysql.MYSQL_TYPE_TIME2:
		return timeText(v, d.decimals)
	}
	return v
}

// floatText writes a float as MySQL's text protocol does: plainly within
// a usual range (1000000, 0.25), with an exponent outside it (1e20).
func floatText(f float64, bits int) []byte {
	if a := math.Abs(f); a == 0 || (a >= 1e-4 && a < 1e15) {
		return strconv.AppendFloat(nil, f, 'f', -1, bits)
	}
	return strconv.AppendFloat(nil, f, 'g', -1, bits)
}

// dateText appends a temporal's date: 0 or at least 4 bytes of year,
// month, day.
func dateText(b, v []byte) []byte {
	if len(v) < 4 {
		return append(b, "0000-00-00"...)
	}
	return fmt.Appendf(b, "%04d-%02d-%02d", binary.LittleEndian.Uint16(v), v[2], v[3])
}

// timeText is a TIME: 0, 8 or 12 bytes of sign, days, hours, minutes,
// seconds and microseconds, written [-]H:MM:SS with the hours past 24.
func timeText(v []byte, decimals uint8) []byte {
	if len(v) < 8 {
		return fraction([]byte("00:00:00"), v, 8, decimals)
	}
	var b []byte
	if v[0] == 1 {
		b = append(b, '-')
	}
	hours := uint64(binary.LittleEndian.Uint32(v[1:]))*24 + uint64(v[5])
	b = fmt.Appendf(b, "%02d:%02d:%02d", hours, v[6], v[7])
	return fraction(b, v, 8, decimals)
}

// fraction appends the microseconds stored at v[at:] with the column's
// decimals digits (none when it has none).
func fraction(b, v []byte, at int, decimals uint8) []byte {
	if decimals == 0 || decimals > 6 {
		return b
	}
	var micro uint32
	if len(v) >= at+4 {
		micro = binary.LittleEndian.Uint32(v[at:])
	}
	return append(append(b, '.'), fmt.Sprintf("%06d", micro)[:decimals]...)
}
