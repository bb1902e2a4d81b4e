package mysql

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/protocols/mysql/wire"
	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/session"
)

// TestAppendExecute: the execution the runner sends decodes, with the
// wire package's own decoder, to the values and types it meant.
func TestAppendExecute(t *testing.T) {
	params := []engine.Param{{Kind: engine.ParamNumber, Text: "7"}, {Kind: engine.ParamString, Text: "ada@example.com"},
		{Kind: engine.ParamNull}, {Kind: engine.ParamBool, Text: "true"}, {Kind: engine.ParamNumber, Text: "18446744073709551615"},
		{Kind: engine.ParamNumber, Text: "2.50"}, {Kind: engine.ParamNumber, Text: "1e3"}, {Kind: engine.ParamNumber, Text: "1e99999"},
		{Kind: engine.ParamString, Text: ""}}
	payload := appendExecute(nil, 42, params)
	st := &wire.Statement{Params: len(params)}
	cmd, err := wire.DecodeCommand(payload, wire.RelayCapabilities&^mysql.CLIENT_QUERY_ATTRIBUTES,
		func(id uint32) (*wire.Statement, bool) { return st, id == 42 })
	if err != nil {
		t.Fatal(err)
	}
	ex, ok := cmd.(*wire.Execute)
	if !ok || ex.StatementID != 42 || !ex.NewParamsBound || len(ex.Params) != len(params) {
		t.Fatalf("decoded %#v", cmd)
	}
	want := []struct {
		typ      byte
		unsigned bool
		null     bool
		value    string
	}{
		{mysql.MYSQL_TYPE_LONGLONG, false, false, "\x07\x00\x00\x00\x00\x00\x00\x00"},
		{mysql.MYSQL_TYPE_STRING, false, false, "ada@example.com"},
		{mysql.MYSQL_TYPE_NULL, false, true, ""},
		{mysql.MYSQL_TYPE_TINY, false, false, "\x01"},
		{mysql.MYSQL_TYPE_LONGLONG, true, false, "\xff\xff\xff\xff\xff\xff\xff\xff"},
		{mysql.MYSQL_TYPE_NEWDECIMAL, false, false, "2.50"},
		{mysql.MYSQL_TYPE_DOUBLE, false, false, "\x00\x00\x00\x00\x00\x40\x8f\x40"},
		{mysql.MYSQL_TYPE_NEWDECIMAL, false, false, "1e99999"},
		{mysql.MYSQL_TYPE_STRING, false, false, ""},
	}
	for i, w := range want {
		p := ex.Params[i]
		if p.Type != w.typ || p.Unsigned != w.unsigned || p.Null != w.null || string(p.Value) != w.value {
			t.Errorf("params[%d] = type %d unsigned %v null %v %q, want %+v", i, p.Type, p.Unsigned, p.Null, p.Value, w)
		}
	}
}

func TestBinaryText(t *testing.T) {
	for _, tc := range []struct {
		def  binaryDef
		in   string
		want string
	}{
		{binaryDef{typ: mysql.MYSQL_TYPE_TINY}, "\xff", "-1"},
		{binaryDef{typ: mysql.MYSQL_TYPE_TINY, unsigned: true}, "\xff", "255"},
		{binaryDef{typ: mysql.MYSQL_TYPE_SHORT}, "\xfe\xff", "-2"},
		{binaryDef{typ: mysql.MYSQL_TYPE_YEAR}, "\xe9\x07", "2025"},
		{binaryDef{typ: mysql.MYSQL_TYPE_LONG}, "\xff\xff\xff\xff", "-1"},
		{binaryDef{typ: mysql.MYSQL_TYPE_LONGLONG, unsigned: true}, "\xff\xff\xff\xff\xff\xff\xff\xff", "18446744073709551615"},
		{binaryDef{typ: mysql.MYSQL_TYPE_DOUBLE}, "\x00\x00\x00\x00\x00\x00\xf8\x3f", "1.5"},
		{binaryDef{typ: mysql.MYSQL_TYPE_DOUBLE}, "\x00\x00\x00\x00\x80\x84\x2e\x41", "1000000"},
		{binaryDef{typ: mysql.MYSQL_TYPE_FLOAT}, "\x00\x00\xc0\x3f", "1.5"},
		{binaryDef{typ: mysql.MYSQL_TYPE_DATE}, "\xe9\x07\x03\x09", "2025-03-09"},
		{binaryDef{typ: mysql.MYSQL_TYPE_DATE}, "", "0000-00-00"},
		{binaryDef{typ: mysql.MYSQL_TYPE_DATETIME}, "\xe9\x07\x03\x09", "2025-03-09 00:00:00"},
		{binaryDef{typ: mysql.MYSQL_TYPE_DATETIME}, "\xe9\x07\x03\x09\x0d\x05\x3b", "2025-03-09 13:05:59"},
		{binaryDef{typ: mysql.MYSQL_TYPE_DATETIME, decimals: 3}, "\xe9\x07\x03\x09\x0d\x05\x3b\x40\xe2\x01\x00", "2025-03-09 13:05:59.123"},
		{binaryDef{typ: mysql.MYSQL_TYPE_TIMESTAMP, decimals: 2}, "\xe9\x07\x03\x09\x0d\x05\x3b", "2025-03-09 13:05:59.00"},
		{binaryDef{typ: mysql.MYSQL_TYPE_TIME}, "", "00:00:00"},
		{binaryDef{typ: mysql.MYSQL_TYPE_TIME}, "\x01\x01\x00\x00\x00\x02\x03\x04", "-26:03:04"},
		{binaryDef{typ: mysql.MYSQL_TYPE_TIME, decimals: 6}, "\x00\x00\x00\x00\x00\x02\x03\x04\x01\x00\x00\x00", "02:03:04.000001"},
		{binaryDef{typ: mysql.MYSQL_TYPE_NEWDECIMAL}, "12.50", "12.50"},
		{binaryDef{typ: mysql.MYSQL_TYPE_VAR_STRING}, "text", "text"},
	} {
		if got := string(binaryText(tc.def, []byte(tc.in))); got != tc.want {
			t.Errorf("binaryText(%+v, %q) = %q, want %q", tc.def, tc.in, got, tc.want)
		}
	}
}

// TestExecutorParams runs statements with parameters on the local MariaDB
// as prepared statements: values of every kind bound, binary rows turned
// into the text protocol's form, a count that does not match refused
// with MySQL's own error, and the session usable afterwards.
func TestExecutorParams(t *testing.T) {
	testenv.Need(t, "MariaDB", testenv.MariaDBAddr)
	conn := &protocols.Connection{Name: "m", Protocol: protocols.MySQL, Allow: protocols.Principals{"*"},
		Upstream: &Upstream{Address: testenv.MariaDBAddr, Database: "test", User: "root", TLS: UpstreamTLS{Mode: "prefer"}}}
	g, err := session.New(session.Options{Auth: anyone{}, Classifier: reads{}, Connections: map[string]*protocols.Connection{"m": conn}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	flow, err := g.Admit(ctx, session.Caller{Protocol: protocols.MySQL, User: "dev", Secret: "x", Connection: "m", Local: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := flow.Start(); err != nil {
		t.Fatal(err)
	}
	defer flow.Close("done")
	r, err := New().Dial(ctx, flow)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	run := func(sql string, params ...engine.Param) (*rowsSink, error) {
		sink := &rowsSink{}
		cmd := &protocols.Command{Protocol: protocols.MySQL, Text: sql, Kind: "query",
			Payload: &protocols.Payload{Tool: "query", Arguments: engine.Arguments(map[string]string{"connection": "m"}, params)}}
		_, err := flow.Execute(ctx, r, cmd, sink)
		return sink, err
	}
	sink, err := run("SELECT ? + 1, CONCAT(?, '!'), ? IS NULL, ?, CAST(? AS DATETIME(3)), CAST('12:30:00' AS TIME), 2.5e0, CAST(? AS UNSIGNED), ?",
		engine.Param{Kind: engine.ParamNumber, Text: "41"}, engine.Param{Kind: engine.ParamString, Text: "it's"},
		engine.Param{Kind: engine.ParamNull}, engine.Param{Kind: engine.ParamBool, Text: "true"},
		engine.Param{Kind: engine.ParamString, Text: "2025-03-09 13:05:59.123"}, engine.Param{Kind: engine.ParamNumber, Text: "18446744073709551615"},
		engine.Param{Kind: engine.ParamNumber, Text: "2.50"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sink.rows, ";"); got != "42|it's!|1|1|2025-03-09 13:05:59.123|12:30:00|2.5|18446744073709551615|2.50" {
		t.Fatalf("rows %q", got)
	}
	_, err = run("SELECT ?, ?", engine.Param{Kind: engine.ParamNumber, Text: "1"})
	var ue *UpstreamError
	if !errors.As(err, &ue) || ue.Code != errWrongArguments || !strings.Contains(ue.Message, "2 placeholders") {
		t.Fatalf("a wrong count: %v", err)
	}
	_, err = run("SELEC ?", engine.Param{Kind: engine.ParamNumber, Text: "1"})
	if !errors.As(err, &ue) || ue.Code != 1064 {
		t.Fatalf("a syntax error: %v", err)
	}
	if sink, err := run("SELECT 'still here'"); err != nil || len(sink.rows) != 1 || sink.rows[0] != "still here" {
		t.Fatalf("after the errors: %v %v", sink, err)
	}
}
