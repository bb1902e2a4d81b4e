package wire

import (
	"errors"
	"reflect"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func b(s string) []byte { return []byte(s) }

// statements is a fixed set of prepared statements for the decoder.
func statements(m map[uint32]*Statement) Statements {
	return func(id uint32) (*Statement, bool) {
		st, ok := m[id]
		return st, ok
	}
}

func TestDecodeCommand(t *testing.T) {
	const attrs = mysql.CLIENT_QUERY_ATTRIBUTES
	stmts := statements(map[uint32]*Statement{
		7:  {Params: 3},
		8:  {Params: 2, Types: []ParamType{{Type: mysql.MYSQL_TYPE_LONGLONG, Unsigned: true}, {Type: mysql.MYSQL_TYPE_BLOB}}},
		9:  {Params: 2, Types: []ParamType{{Type: mysql.MYSQL_TYPE_TINY}, {Type: mysql.MYSQL_TYPE_BLOB}}, LongData: []bool{false, true}},
		10: {Params: 0},
	})
	execHead := func(id byte, flags byte) []byte {
		return []byte{mysql.COM_STMT_EXECUTE, id, 0, 0, 0, flags, 1, 0, 0, 0}
	}
	cases := []struct {
		name    string
		caps    uint32
		payload []byte
		want    Command
	}{
		{"query", 0, b("\x03SELECT 1"), &Query{Text: b("SELECT 1")}},
		{"query with an empty attribute block", attrs, b("\x03\x00\x01SELECT 1"), &Query{Text: b("SELECT 1")}},
		{"query with attributes", attrs, cat(b("\x03\x02\x01"), []byte{0x02, 1}, b("\xfe\x00\x05trace\x08\x80\x01n"), b("\x03abc"), b("SELECT 1")),
			&Query{Attributes: []Param{
				{Name: b("trace"), Type: mysql.MYSQL_TYPE_STRING, Value: b("abc")},
				{Name: b("n"), Type: mysql.MYSQL_TYPE_LONGLONG, Unsigned: true, Null: true},
			}, Text: b("SELECT 1")}},
		{"prepare", 0, b("\x16SELECT ?"), &Prepare{Text: b("SELECT ?")}},
		{"execute binding types", 0, cat(execHead(7, 0), []byte{0x04, 1, 0x03, 0, 0xfd, 0, 0x06, 0}, []byte{42, 0, 0, 0}, b("\x02hi")),
			&Execute{StatementID: 7, Iterations: 1, NewParamsBound: true, Params: []Param{
				{Type: mysql.MYSQL_TYPE_LONG, Value: []byte{42, 0, 0, 0}},
				{Type: mysql.MYSQL_TYPE_VAR_STRING, Value: b("hi")},
				{Type: mysql.MYSQL_TYPE_NULL, Null: true},
			}}},
		{"execute reusing bound types", 0, cat(execHead(8, 0), []byte{0x00, 0}, []byte{1, 0, 0, 0, 0, 0, 0, 0}, b("\x01z")),
			&Execute{StatementID: 8, Iterations: 1, Params: []Param{
				{Type: mysql.MYSQL_TYPE_LONGLONG, Unsigned: true, Value: []byte{1, 0, 0, 0, 0, 0, 0, 0}},
				{Type: mysql.MYSQL_TYPE_BLOB, Value: b("z")},
			}}},
		{"execute with long data", 0, cat(execHead(9, 0), []byte{0x00, 0}, []byte{5}),
			&Execute{StatementID: 9, Iterations: 1, Params: []Param{
				{Type: mysql.MYSQL_TYPE_TINY, Value: []byte{5}},
				{Type: mysql.MYSQL_TYPE_BLOB, LongData: true},
			}}},
		{"execute with query attributes", attrs, cat(execHead(10, ParameterCountAvailable), []byte{1, 0, 1, 0xfe, 0}, b("\x01a\x01v")),
			&Execute{StatementID: 10, Flags: ParameterCountAvailable, Iterations: 1, NewParamsBound: true, Params: []Param{
				{Name: b("a"), Type: mysql.MYSQL_TYPE_STRING, Value: b("v")},
			}}},
		{"execute without parameters", attrs, execHead(10, 0), &Execute{StatementID: 10, Iterations: 1}},
		{"send long data", 0, b("\x18\x09\x00\x00\x00\x01\x00chunk"), &SendLongData{StatementID: 9, Param: 1, Data: b("chunk")}},
		{"close", 0, b("\x19\x07\x00\x00\x00"), &StmtClose{StatementID: 7}},
		{"reset", 0, b("\x1a\x07\x00\x00\x00"), &StmtReset{StatementID: 7}},
		{"fetch", 0, b("\x1c\x07\x00\x00\x00\x10\x00\x00\x00"), &Fetch{StatementID: 7, Rows: 16}},
		{"init db", 0, b("\x02orders"), &InitDB{Schema: b("orders")}},
		{"field list", 0, b("\x04users\x00na%"), &FieldList{Table: b("users"), Wildcard: b("na%")}},
		{"change user", mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_CONNECT_ATTRS,
			cat(b("\x11bob\x00\x03abcorders\x00\x2d\x00caching_sha2_password\x00"), b("\x06\x01k\x03val")),
			&ChangeUser{User: b("bob"), AuthResponse: b("abc"), Database: b("orders"), Charset: 45,
				AuthPlugin: b("caching_sha2_password"), Attributes: map[string]string{"k": "val"}}},
		{"set option", 0, b("\x1b\x01\x00"), &SetOption{Option: mysql.MYSQL_OPTION_MULTI_STATEMENTS_OFF}},
		{"process kill", 0, b("\x0c\x2a\x00\x00\x00"), &ProcessKill{ConnectionID: 42}},
		{"ping", 0, b("\x0e"), &Simple{Command: mysql.COM_PING}},
		{"quit", 0, b("\x01"), &Simple{Command: mysql.COM_QUIT}},
		{"statistics", 0, b("\x09"), &Simple{Command: mysql.COM_STATISTICS}},
		{"debug", 0, b("\x0d"), &Simple{Command: mysql.COM_DEBUG}},
		{"reset connection", 0, b("\x1f"), &Simple{Command: mysql.COM_RESET_CONNECTION}},
		{"binlog dump", 0, b("\x12\x04\x00\x00\x00\x00\x00\x01\x00\x00\x00bin.000001"),
			&Replication{Command: mysql.COM_BINLOG_DUMP, Body: b("\x04\x00\x00\x00\x00\x00\x01\x00\x00\x00bin.000001")}},
		{"binlog dump gtid", 0, b("\x1e\x00"), &Replication{Command: mysql.COM_BINLOG_DUMP_GTID, Body: b("\x00")}},
		{"register replica", 0, b("\x15\x01"), &Replication{Command: mysql.COM_REGISTER_SLAVE, Body: b("\x01")}},
		{"obsolete create db", 0, b("\x05x"), &Unsupported{Command: mysql.COM_CREATE_DB, Body: b("x")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeCommand(tc.payload, tc.caps, stmts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %#v\nwant %#v", got, tc.want)
			}
			if got.Code() != tc.payload[0] {
				t.Errorf("Code() = 0x%02x, want 0x%02x", got.Code(), tc.payload[0])
			}
		})
	}
}

func TestDecodeCommandRejects(t *testing.T) {
	stmts := statements(map[uint32]*Statement{7: {Params: 1}})
	cases := []struct {
		name    string
		caps    uint32
		payload []byte
	}{
		{"empty", 0, nil},
		{"short close", 0, b("\x19\x07\x00")},
		{"ping with a body", 0, b("\x0e\x00")},
		{"unknown statement", 0, b("\x17\x08\x00\x00\x00\x00\x01\x00\x00\x00")},
		{"types never bound", 0, b("\x17\x07\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x01")},
		{"value overruns", 0, b("\x17\x07\x00\x00\x00\x00\x01\x00\x00\x00\x00\x01\x03\x00\x01\x02")},
		{"attribute count beyond the payload", mysql.CLIENT_QUERY_ATTRIBUTES, b("\x03\xfc\xff\xff\x01")},
		{"two parameter sets", mysql.CLIENT_QUERY_ATTRIBUTES, b("\x03\x00\x02SELECT 1")},
		{"field list without terminator", 0, b("\x04users")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd, err := DecodeCommand(tc.payload, tc.caps, stmts)
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("DecodeCommand = %#v, %v; want ErrMalformed", cmd, err)
			}
		})
	}
}

func TestAppendQuery(t *testing.T) {
	for _, caps := range []uint32{0, mysql.CLIENT_QUERY_ATTRIBUTES} {
		cmd, err := DecodeCommand(AppendQuery(nil, caps, b("SELECT 1")), caps, nil)
		if err != nil {
			t.Fatal(err)
		}
		if q := cmd.(*Query); string(q.Text) != "SELECT 1" || q.Attributes != nil {
			t.Errorf("caps %#x: %#v", caps, q)
		}
	}
}

func TestStatementState(t *testing.T) {
	st := &Statement{Params: 2}
	lookup := statements(map[uint32]*Statement{1: st})
	bind := b("\x17\x01\x00\x00\x00\x00\x01\x00\x00\x00\x00\x01\x01\x00\xfc\x00\x07\x01z")
	cmd, err := DecodeCommand(bind, 0, lookup)
	if err != nil {
		t.Fatal(err)
	}
	st.Executed(cmd.(*Execute))
	if want := []ParamType{{Type: mysql.MYSQL_TYPE_TINY}, {Type: mysql.MYSQL_TYPE_BLOB}}; !reflect.DeepEqual(st.Types, want) {
		t.Fatalf("bound types %+v", st.Types)
	}
	st.LongDataSent(1)
	st.LongDataSent(9) // beyond the parameters: ignored
	cmd, err = DecodeCommand(b("\x17\x01\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x08"), 0, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if p := cmd.(*Execute).Params; p[0].Type != mysql.MYSQL_TYPE_TINY || string(p[0].Value) != "\x08" || !p[1].LongData {
		t.Errorf("reusing types with long data: %+v", p)
	}
	st.Executed(cmd.(*Execute))
	if st.LongData != nil || len(st.Types) != 2 {
		t.Errorf("after execution: %+v", st)
	}
}
