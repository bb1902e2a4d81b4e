package wire

import (
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Responses are decoded by hand: go-mysql's client parses them into a
// mysql.Result inside client.Conn (buffering whole result sets) and exposes
// no decoder for a payload the engine has already read.

// OK is an OK packet, or the OK that ends a result set under
// CLIENT_DEPRECATE_EOF (Header 0xFE).
type OK struct {
	Header       byte
	AffectedRows uint64
	LastInsertID uint64
	Status       uint16
	Warnings     uint16
	Info         []byte
	// SessionState is the raw session state information, present with
	// CLIENT_SESSION_TRACK when Status has SERVER_SESSION_STATE_CHANGED;
	// SessionChanges decodes it.
	SessionState []byte
}

// ParseOK decodes an OK packet under the session's capabilities.
func ParseOK(payload []byte, caps uint32) (*OK, error) {
	c := cursor{b: payload}
	ok := &OK{Header: c.u8("header")}
	if c.err == nil && ok.Header != mysql.OK_HEADER && ok.Header != mysql.EOF_HEADER {
		return nil, fmt.Errorf("%w: OK header 0x%02x", ErrMalformed, ok.Header)
	}
	ok.AffectedRows = c.lenenc("affected rows", false)
	ok.LastInsertID = c.lenenc("last insert id", false)
	if caps&mysql.CLIENT_PROTOCOL_41 != 0 {
		ok.Status = c.u16("status")
		ok.Warnings = c.u16("warnings")
	} else if caps&mysql.CLIENT_TRANSACTIONS != 0 {
		ok.Status = c.u16("status")
	}
	if caps&mysql.CLIENT_SESSION_TRACK != 0 {
		// The server omits the info string when it is empty and nothing
		// else follows.
		if c.remaining() > 0 {
			ok.Info = c.lenencBytes("info", false)
		}
		if ok.Status&mysql.SERVER_SESSION_STATE_CHANGED != 0 && c.remaining() > 0 {
			ok.SessionState = c.lenencBytes("session state", false)
		}
	} else {
		ok.Info = c.rest()
	}
	if err := c.end("OK packet"); err != nil {
		return nil, err
	}
	return ok, nil
}

// AppendOK appends ok's payload to dst as a server would send it under caps.
func AppendOK(dst []byte, ok *OK, caps uint32) []byte {
	header := ok.Header
	if header != mysql.EOF_HEADER {
		header = mysql.OK_HEADER
	}
	dst = append(dst, header)
	dst = appendLenenc(dst, ok.AffectedRows)
	dst = appendLenenc(dst, ok.LastInsertID)
	if caps&mysql.CLIENT_PROTOCOL_41 != 0 {
		dst = appendU16(dst, ok.Status)
		dst = appendU16(dst, ok.Warnings)
	} else if caps&mysql.CLIENT_TRANSACTIONS != 0 {
		dst = appendU16(dst, ok.Status)
	}
	if caps&mysql.CLIENT_SESSION_TRACK == 0 {
		return append(dst, ok.Info...)
	}
	changed := ok.Status&mysql.SERVER_SESSION_STATE_CHANGED != 0
	if changed || len(ok.Info) > 0 {
		dst = appendLenencBytes(dst, ok.Info)
	}
	if changed {
		dst = appendLenencBytes(dst, ok.SessionState)
	}
	return dst
}

// Session state change types (enum_session_state_type).
const (
	SessionTrackSystemVariables            = 0x00
	SessionTrackSchema                     = 0x01
	SessionTrackStateChange                = 0x02
	SessionTrackGTIDs                      = 0x03
	SessionTrackTransactionCharacteristics = 0x04
	SessionTrackTransactionState           = 0x05
)

// SessionChange is one entry of an OK packet's session state information.
type SessionChange struct {
	Type byte
	// Name is the variable's name (SessionTrackSystemVariables) or the new
	// schema (SessionTrackSchema); Value the variable's value, or for the
	// other types their first length-encoded string. Data is the entry's
	// raw data.
	Name, Value []byte
	Data        []byte
}

// SessionChanges decodes an OK packet's SessionState.
func SessionChanges(state []byte) ([]SessionChange, error) {
	var out []SessionChange
	c := cursor{b: state}
	for c.remaining() > 0 {
		ch := SessionChange{Type: c.u8("session state type")}
		ch.Data = c.lenencBytes("session state data", false)
		d := cursor{b: ch.Data}
		switch ch.Type {
		case SessionTrackSystemVariables:
			ch.Name = d.lenencBytes("variable name", false)
			ch.Value = d.lenencBytes("variable value", false)
		case SessionTrackSchema:
			ch.Name = d.lenencBytes("schema", false)
		default:
			if d.remaining() > 0 {
				ch.Value = d.lenencBytes("session state value", false)
			}
		}
		if d.err != nil {
			return nil, d.err
		}
		out = append(out, ch)
	}
	return out, c.err
}

// ParseERR decodes an ERR packet. The SQLSTATE marker is optional: servers
// leave it out before they know the client speaks protocol 4.1, and the
// State is then HY000.
func ParseERR(payload []byte) (*mysql.MyError, error) {
	c := cursor{b: payload}
	if h := c.u8("header"); c.err == nil && h != mysql.ERR_HEADER {
		return nil, fmt.Errorf("%w: ERR header 0x%02x", ErrMalformed, h)
	}
	e := &mysql.MyError{Code: c.u16("error code"), State: mysql.DEFAULT_MYSQL_STATE}
	if c.remaining() >= 6 && payload[c.pos] == '#' {
		c.pos++
		e.State = string(c.take(5, "sqlstate"))
	}
	e.Message = string(c.rest())
	if c.err != nil {
		return nil, c.err
	}
	return e, nil
}

// AppendERR appends an ERR packet for e to dst, with the SQLSTATE marker
// (every client Airlock accepts speaks protocol 4.1). A State that is not
// five characters is replaced by HY000.
func AppendERR(dst []byte, e *mysql.MyError) []byte {
	state := e.State
	if len(state) != 5 {
		state = mysql.DEFAULT_MYSQL_STATE
	}
	dst = append(dst, mysql.ERR_HEADER)
	dst = appendU16(dst, e.Code)
	dst = append(dst, '#')
	dst = append(dst, state...)
	return append(dst, e.Message...)
}

// EOF is a pre-CLIENT_DEPRECATE_EOF end-of-data packet.
type EOF struct {
	Warnings uint16
	Status   uint16
}

// ParseEOF decodes an EOF packet.
func ParseEOF(payload []byte) (*EOF, error) {
	c := cursor{b: payload}
	if h := c.u8("header"); c.err == nil && (h != mysql.EOF_HEADER || len(payload) >= 9) {
		return nil, fmt.Errorf("%w: not an EOF packet", ErrMalformed)
	}
	e := &EOF{}
	if c.remaining() > 0 {
		e.Warnings = c.u16("warnings")
		e.Status = c.u16("status")
	}
	if err := c.end("EOF packet"); err != nil {
		return nil, err
	}
	return e, nil
}

// AppendEOF appends an EOF packet to dst.
func AppendEOF(dst []byte, e EOF) []byte {
	return appendU16(appendU16(append(dst, mysql.EOF_HEADER), e.Warnings), e.Status)
}

// IsEOF reports whether payload is an EOF packet: 0xFE and shorter than 9
// bytes, which no row can be (a row starting with 0xFE holds a value of
// 2^24 bytes or more).
func IsEOF(payload []byte) bool {
	return len(payload) > 0 && len(payload) < 9 && payload[0] == mysql.EOF_HEADER
}

// IsERR reports whether payload is an ERR packet.
func IsERR(payload []byte) bool { return len(payload) > 0 && payload[0] == mysql.ERR_HEADER }

// ResultEnd tells whether payload, read where a row or the end of a result
// set may come, ends the rows: an EOF packet, or under CLIENT_DEPRECATE_EOF
// an OK packet with header 0xFE (no row shorter than 2^24-1 bytes starts with
// 0xFE). It returns the status flags of that packet, whose
// SERVER_MORE_RESULTS_EXISTS says another result follows. An ERR packet
// also ends the rows; it is reported as end with err set to the server's
// error. Otherwise payload is a row.
func ResultEnd(payload []byte, caps uint32) (end bool, status uint16, err error) {
	switch {
	case IsERR(payload):
		e, perr := ParseERR(payload)
		if perr != nil {
			return true, 0, perr
		}
		return true, 0, e
	case len(payload) == 0 || payload[0] != mysql.EOF_HEADER:
		return false, 0, nil
	case caps&mysql.CLIENT_DEPRECATE_EOF != 0 && len(payload) < MaxChunk:
		ok, perr := ParseOK(payload, caps)
		if perr != nil {
			return true, 0, perr
		}
		return true, ok.Status, nil
	case caps&mysql.CLIENT_DEPRECATE_EOF == 0 && IsEOF(payload):
		e, perr := ParseEOF(payload)
		if perr != nil {
			return true, 0, perr
		}
		return true, e.Status, nil
	}
	return false, 0, nil
}

// MoreResults reports whether status says another result follows.
func MoreResults(status uint16) bool { return status&mysql.SERVER_MORE_RESULTS_EXISTS != 0 }

// ResponseKind classifies the first packet of a command's response.
type ResponseKind uint8

// Kinds of first response packets.
const (
	ResponseOK        ResponseKind = iota // OK: the command is done
	ResponseERR                           // ERR: the command failed
	ResponseLocalFile                     // LOCAL INFILE request (0xFB)
	ResponseResultSet                     // a column count: a result set follows
)

// ClassifyResponse tells what the first packet of a COM_QUERY or
// COM_STMT_EXECUTE response is.
func ClassifyResponse(payload []byte) ResponseKind {
	switch {
	case len(payload) == 0:
		return ResponseResultSet
	case payload[0] == mysql.OK_HEADER:
		return ResponseOK
	case payload[0] == mysql.ERR_HEADER:
		return ResponseERR
	case payload[0] == mysql.LocalInFile_HEADER:
		return ResponseLocalFile
	}
	return ResponseResultSet
}

// ParseColumnCount decodes the packet that starts a result set. Airlock
// never negotiates CLIENT_OPTIONAL_RESULTSET_METADATA, so nothing follows
// the count.
func ParseColumnCount(payload []byte) (int, error) {
	c := cursor{b: payload}
	n := c.lenenc("column count", false)
	if err := c.end("column count"); err != nil {
		return 0, err
	}
	if n == 0 || n > 1<<16 {
		return 0, fmt.Errorf("%w: column count %d", ErrMalformed, n)
	}
	return int(n), nil
}

// PrepareOK is the first packet of a successful COM_STMT_PREPARE response.
// Params column definitions follow, then Columns ones, each list ended by an
// EOF packet unless CLIENT_DEPRECATE_EOF.
type PrepareOK struct {
	StatementID uint32
	Columns     uint16
	Params      uint16
	Warnings    uint16
}

// ParsePrepareOK decodes a COM_STMT_PREPARE_OK packet.
func ParsePrepareOK(payload []byte) (*PrepareOK, error) {
	c := cursor{b: payload}
	if h := c.u8("header"); c.err == nil && h != mysql.OK_HEADER {
		return nil, fmt.Errorf("%w: prepare OK header 0x%02x", ErrMalformed, h)
	}
	p := &PrepareOK{StatementID: c.u32("statement id"), Columns: c.u16("column count"), Params: c.u16("param count")}
	c.u8("filler")
	if c.remaining() > 0 {
		p.Warnings = c.u16("warnings")
	}
	// MySQL 8 may add a metadata_follows byte; it only matters with
	// CLIENT_OPTIONAL_RESULTSET_METADATA, which Airlock never negotiates.
	if c.remaining() > 1 {
		c.fail("trailing bytes after prepare OK")
	}
	if c.err != nil {
		return nil, c.err
	}
	return p, nil
}

// AppendPrepareOK appends a COM_STMT_PREPARE_OK payload to dst.
func AppendPrepareOK(dst []byte, p *PrepareOK) []byte {
	dst = appendU32(append(dst, mysql.OK_HEADER), p.StatementID)
	dst = appendU16(appendU16(dst, p.Columns), p.Params)
	return appendU16(append(dst, 0), p.Warnings)
}
