package wire

import (
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Commands are decoded by hand: go-mysql's server dispatches them to a
// Handler inside server.Conn (answering them itself) and has no decoder for
// query attributes or for the raw parameters of COM_STMT_EXECUTE.

// Command is a decoded client command. Its byte slices alias the payload.
type Command interface {
	// Code is the command byte (mysql.COM_*).
	Code() byte
}

// Query is COM_QUERY.
type Query struct {
	// Attributes are the query attributes sent ahead of the text under
	// CLIENT_QUERY_ATTRIBUTES.
	Attributes []Param
	Text       []byte
}

// Prepare is COM_STMT_PREPARE.
type Prepare struct{ Text []byte }

// Execute is COM_STMT_EXECUTE.
type Execute struct {
	StatementID uint32
	// Flags are the cursor flags (CURSOR_TYPE_*, PARAMETER_COUNT_AVAILABLE).
	Flags      uint8
	Iterations uint32
	// NewParamsBound says the types were sent with this execution; when
	// false they are the ones bound last time, taken from the Statement.
	NewParamsBound bool
	// Params are the statement's parameters, then any query attributes
	// (those have a Name).
	Params []Param
}

// Param is a parameter of COM_STMT_EXECUTE or a query attribute of
// COM_QUERY.
type Param struct {
	Name []byte
	// Type is the MySQL type; Unsigned its flag.
	Type     byte
	Unsigned bool
	// Null is set for a NULL value; LongData for a value sent earlier with
	// COM_STMT_SEND_LONG_DATA. Value is otherwise the binary-protocol value,
	// laid out as in binary rows.
	Null     bool
	LongData bool
	Value    []byte
}

// SendLongData is COM_STMT_SEND_LONG_DATA.
type SendLongData struct {
	StatementID uint32
	Param       uint16
	Data        []byte
}

// StmtClose is COM_STMT_CLOSE; it has no response.
type StmtClose struct{ StatementID uint32 }

// StmtReset is COM_STMT_RESET.
type StmtReset struct{ StatementID uint32 }

// Fetch is COM_STMT_FETCH.
type Fetch struct {
	StatementID uint32
	Rows        uint32
}

// InitDB is COM_INIT_DB.
type InitDB struct{ Schema []byte }

// FieldList is COM_FIELD_LIST.
type FieldList struct{ Table, Wildcard []byte }

// ChangeUser is COM_CHANGE_USER.
type ChangeUser struct {
	User         []byte
	AuthResponse []byte
	Database     []byte
	Charset      uint16
	AuthPlugin   []byte
	Attributes   map[string]string
}

// SetOption is COM_SET_OPTION (MYSQL_OPTION_MULTI_STATEMENTS_ON/OFF).
type SetOption struct{ Option uint16 }

// ProcessKill is COM_PROCESS_KILL.
type ProcessKill struct{ ConnectionID uint32 }

// Simple is a command without arguments that Airlock may relay: COM_QUIT,
// COM_PING, COM_STATISTICS, COM_DEBUG, COM_RESET_CONNECTION.
type Simple struct{ Command byte }

// Replication is a command that turns the session into a replication or
// cloning stream (COM_BINLOG_DUMP, COM_BINLOG_DUMP_GTID, COM_REGISTER_SLAVE,
// COM_TABLE_DUMP, COM_CLONE, ...). Airlock refuses these.
type Replication struct {
	Command byte
	Body    []byte
}

// Unsupported is any other command: obsolete ones (COM_CREATE_DB,
// COM_REFRESH, COM_SHUTDOWN, ...) and unknown bytes, to be refused.
type Unsupported struct {
	Command byte
	Body    []byte
}

func (*Query) Code() byte         { return mysql.COM_QUERY }
func (*Prepare) Code() byte       { return mysql.COM_STMT_PREPARE }
func (*Execute) Code() byte       { return mysql.COM_STMT_EXECUTE }
func (*SendLongData) Code() byte  { return mysql.COM_STMT_SEND_LONG_DATA }
func (*StmtClose) Code() byte     { return mysql.COM_STMT_CLOSE }
func (*StmtReset) Code() byte     { return mysql.COM_STMT_RESET }
func (*Fetch) Code() byte         { return mysql.COM_STMT_FETCH }
func (*InitDB) Code() byte        { return mysql.COM_INIT_DB }
func (*FieldList) Code() byte     { return mysql.COM_FIELD_LIST }
func (*ChangeUser) Code() byte    { return mysql.COM_CHANGE_USER }
func (*SetOption) Code() byte     { return mysql.COM_SET_OPTION }
func (*ProcessKill) Code() byte   { return mysql.COM_PROCESS_KILL }
func (s *Simple) Code() byte      { return s.Command }
func (r *Replication) Code() byte { return r.Command }
func (u *Unsupported) Code() byte { return u.Command }

// Statement is what COM_STMT_EXECUTE's decoder must know of a prepared
// statement: its parameter count (from the COM_STMT_PREPARE_OK), the types
// bound by an earlier execution, and which parameters were sent as long data
// since the last execution or COM_STMT_RESET.
type Statement struct {
	Params   int
	Types    []ParamType
	LongData []bool
}

// Executed records what a decoded execution leaves behind, as the server
// does: types it bound stay bound, and long data is used up.
func (s *Statement) Executed(e *Execute) {
	if e.NewParamsBound {
		s.Types = s.Types[:0]
		for _, p := range e.Params[:min(len(e.Params), s.Params)] {
			s.Types = append(s.Types, ParamType{Type: p.Type, Unsigned: p.Unsigned})
		}
	}
	s.LongData = nil
}

// LongDataSent records a COM_STMT_SEND_LONG_DATA for param: its value will
// not be in the next COM_STMT_EXECUTE. COM_STMT_RESET clears LongData.
func (s *Statement) LongDataSent(param uint16) {
	if int(param) >= s.Params {
		return
	}
	if s.LongData == nil {
		s.LongData = make([]bool, s.Params)
	}
	s.LongData[param] = true
}

// ParamType is a parameter's type as bound.
type ParamType struct {
	Type     byte
	Unsigned bool
}

// Statements finds a prepared statement by id; the engine keeps them.
// MariaDB clients may execute id 0xFFFFFFFF, meaning the statement prepared
// last, which the lookup resolves.
type Statements func(id uint32) (*Statement, bool)

// Cursor flags of COM_STMT_EXECUTE.
const (
	CursorReadOnly          = 0x01
	ParameterCountAvailable = 0x08
)

// paramUnsigned is the flag byte of an unsigned parameter type.
const paramUnsigned = mysql.PARAM_UNSIGNED

// replicationCommands turn a session into a stream Airlock cannot inspect.
var replicationCommands = map[byte]bool{
	mysql.COM_BINLOG_DUMP: true, mysql.COM_TABLE_DUMP: true, mysql.COM_CONNECT_OUT: true,
	mysql.COM_REGISTER_SLAVE: true, mysql.COM_BINLOG_DUMP_GTID: true, mysql.COM_CLONE: true,
	mysql.COM_SUBSCRIBE_GROUP_REPLICATION_STREAM: true,
}

// DecodeCommand decodes a client command under the session's negotiated
// capabilities. statements resolves COM_STMT_EXECUTE's statement; it may be
// nil when no statement is prepared.
func DecodeCommand(payload []byte, caps uint32, statements Statements) (Command, error) {
	if len(payload) == 0 {
		return nil, fmt.Errorf("%w: empty command", ErrMalformed)
	}
	c := cursor{b: payload, pos: 1}
	code := payload[0]
	var cmd Command
	switch code {
	case mysql.COM_QUERY:
		cmd = decodeQuery(&c, caps)
	case mysql.COM_STMT_PREPARE:
		cmd = &Prepare{Text: c.rest()}
	case mysql.COM_STMT_EXECUTE:
		cmd = decodeExecute(&c, caps, statements)
	case mysql.COM_STMT_SEND_LONG_DATA:
		cmd = &SendLongData{StatementID: c.u32("statement id"), Param: c.u16("param id"), Data: c.rest()}
	case mysql.COM_STMT_CLOSE:
		cmd = &StmtClose{StatementID: c.u32("statement id")}
	case mysql.COM_STMT_RESET:
		cmd = &StmtReset{StatementID: c.u32("statement id")}
	case mysql.COM_STMT_FETCH:
		cmd = &Fetch{StatementID: c.u32("statement id"), Rows: c.u32("rows")}
	case mysql.COM_INIT_DB:
		cmd = &InitDB{Schema: c.rest()}
	case mysql.COM_FIELD_LIST:
		cmd = &FieldList{Table: c.nulString("table", false), Wildcard: c.rest()}
	case mysql.COM_CHANGE_USER:
		cmd = decodeChangeUser(&c, caps)
	case mysql.COM_SET_OPTION:
		cmd = &SetOption{Option: c.u16("option")}
	case mysql.COM_PROCESS_KILL:
		cmd = &ProcessKill{ConnectionID: c.u32("connection id")}
	case mysql.COM_QUIT, mysql.COM_PING, mysql.COM_STATISTICS, mysql.COM_DEBUG, mysql.COM_RESET_CONNECTION:
		cmd = &Simple{Command: code}
	default:
		if replicationCommands[code] {
			return &Replication{Command: code, Body: c.rest()}, nil
		}
		return &Unsupported{Command: code, Body: c.rest()}, nil
	}
	if err := c.end(fmt.Sprintf("command 0x%02x", code)); err != nil {
		return nil, err
	}
	return cmd, nil
}

// AppendQuery appends a COM_QUERY for text to dst; under
// CLIENT_QUERY_ATTRIBUTES it carries an empty attribute block.
func AppendQuery(dst []byte, caps uint32, text []byte) []byte {
	dst = append(dst, mysql.COM_QUERY)
	if caps&mysql.CLIENT_QUERY_ATTRIBUTES != 0 {
		dst = append(dst, 0, 1) // no parameters, one parameter set
	}
	return append(dst, text...)
}

func decodeQuery(c *cursor, caps uint32) *Query {
	q := &Query{}
	if caps&mysql.CLIENT_QUERY_ATTRIBUTES != 0 {
		count := c.lenenc("parameter count", false)
		if sets := c.lenenc("parameter set count", false); c.err == nil && sets != 1 {
			c.fail(fmt.Sprintf("parameter set count %d", sets))
		}
		if count > 0 {
			q.Attributes, _ = decodeParams(c, caps, count, nil)
		}
	}
	q.Text = c.rest()
	return q
}

func decodeExecute(c *cursor, caps uint32, statements Statements) *Execute {
	e := &Execute{StatementID: c.u32("statement id"), Flags: c.u8("flags"), Iterations: c.u32("iteration count")}
	if c.err != nil {
		return nil
	}
	var st *Statement
	if statements != nil {
		st, _ = statements(e.StatementID)
	}
	if st == nil {
		c.fail(fmt.Sprintf("unknown statement %d", e.StatementID))
		return nil
	}
	count := uint64(st.Params)
	if caps&mysql.CLIENT_QUERY_ATTRIBUTES != 0 && (st.Params > 0 || e.Flags&ParameterCountAvailable != 0) {
		count = c.lenenc("parameter count", false)
		if c.err == nil && count < uint64(st.Params) {
			c.fail(fmt.Sprintf("parameter count %d below the statement's %d", count, st.Params))
		}
	}
	if count > 0 {
		e.Params, e.NewParamsBound = decodeParams(c, caps, count, st)
	}
	return e
}

// decodeParams reads count parameters: the NULL bitmap, the
// new-params-bound flag, the types (each followed by a name under
// CLIENT_QUERY_ATTRIBUTES) and the values. st is nil for query attributes,
// which always bind their types; for a statement it supplies the types
// bound before and the parameters sent as long data.
func decodeParams(c *cursor, caps uint32, count uint64, st *Statement) ([]Param, bool) {
	if count > uint64(c.remaining())*8 {
		c.fail(fmt.Sprintf("parameter count %d", count))
		return nil, false
	}
	n := int(count)
	bitmap := c.take(nullBitmapLen(n, 0), "null bitmap")
	bound := c.u8("new params bound flag") == 1
	if c.err != nil {
		return nil, false
	}
	params := make([]Param, n)
	switch {
	case bound:
		named := caps&mysql.CLIENT_QUERY_ATTRIBUTES != 0
		for i := range params {
			params[i].Type = c.u8("parameter type")
			params[i].Unsigned = c.u8("parameter flags")&paramUnsigned != 0
			if named {
				params[i].Name = c.lenencBytes("parameter name", false)
			}
		}
	case st == nil || len(st.Types) < n:
		c.fail("parameters sent without types")
		return nil, false
	default:
		for i := range params {
			params[i].Type, params[i].Unsigned = st.Types[i].Type, st.Types[i].Unsigned
		}
	}
	for i := range params {
		p := &params[i]
		switch {
		case st != nil && i < len(st.LongData) && st.LongData[i]:
			p.LongData = true
		case isNull(bitmap, i, 0):
			p.Null = true
		default:
			p.Value = readBinaryValue(c, p.Type)
		}
	}
	if c.err != nil {
		return nil, false
	}
	return params, bound
}

func decodeChangeUser(c *cursor, caps uint32) *ChangeUser {
	u := &ChangeUser{User: c.nulString("user", false)}
	if caps&mysql.CLIENT_SECURE_CONNECTION != 0 {
		u.AuthResponse = c.take(int(c.u8("auth response length")), "auth response")
	} else {
		u.AuthResponse = c.nulString("auth response", false)
	}
	u.Database = c.nulString("database", true)
	if c.remaining() >= 2 {
		u.Charset = c.u16("charset")
		if caps&mysql.CLIENT_PLUGIN_AUTH != 0 && c.remaining() > 0 {
			u.AuthPlugin = c.nulString("auth plugin", true)
		}
		if caps&mysql.CLIENT_CONNECT_ATTRS != 0 && c.remaining() > 0 {
			u.Attributes = parseAttributes(c)
		}
	}
	return u
}
