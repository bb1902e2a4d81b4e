package wire

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

const (
	caps41    = mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_TRANSACTIONS
	capsTrack = caps41 | mysql.CLIENT_SESSION_TRACK
	capsNoEOF = caps41 | mysql.CLIENT_DEPRECATE_EOF
)

func TestOKRoundTrip(t *testing.T) {
	schemaChange := cat([]byte{SessionTrackSchema, 7, 6}, b("orders"))
	cases := []struct {
		name    string
		caps    uint32
		payload []byte
		want    OK
	}{
		{"plain", caps41, b("\x00\x01\x02\x02\x00\x00\x00"), OK{AffectedRows: 1, LastInsertID: 2, Status: 2}},
		{"with info", caps41, b("\x00\x03\x00\x22\x00\x01\x00Rows matched: 3"),
			OK{AffectedRows: 3, Status: 0x22, Warnings: 1, Info: b("Rows matched: 3")}},
		{"large counts", caps41, b("\x00\xfc\x00\x01\xfd\x00\x00\x01\x02\x00\x00\x00"), OK{AffectedRows: 256, LastInsertID: 1 << 16, Status: 2}},
		{"session track, nothing after status", capsTrack, b("\x00\x00\x00\x02\x00\x00\x00"), OK{Status: 2}},
		{"session track, schema changed", capsTrack, cat(b("\x00\x00\x00\x02\x40\x00\x00\x00\x09"), schemaChange),
			OK{Status: 0x4002, Info: []byte{}, SessionState: schemaChange}},
		{"end of rows under CLIENT_DEPRECATE_EOF", capsNoEOF, b("\xfe\x00\x00\x22\x00\x00\x00"), OK{Header: 0xfe, Status: 0x22}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := ParseOK(tc.payload, tc.caps)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want.Info == nil && ok.Info != nil && len(ok.Info) == 0 {
				ok.Info = nil
			}
			if !reflect.DeepEqual(*ok, tc.want) {
				t.Errorf("got %+v, want %+v", *ok, tc.want)
			}
			if got := AppendOK(nil, ok, tc.caps); !bytes.Equal(got, tc.payload) {
				t.Errorf("re-encoded % x, want % x", got, tc.payload)
			}
		})
	}
}

func TestSessionChanges(t *testing.T) {
	state := cat(
		[]byte{SessionTrackSystemVariables, 14, 10}, b("autocommit"), []byte{2}, b("ON"),
		[]byte{SessionTrackSchema, 7, 6}, b("orders"),
		[]byte{SessionTrackStateChange, 2, 1}, b("1"),
	)
	got, err := SessionChanges(state)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || string(got[0].Name) != "autocommit" || string(got[0].Value) != "ON" ||
		string(got[1].Name) != "orders" || got[2].Type != SessionTrackStateChange || string(got[2].Value) != "1" {
		t.Errorf("changes %+v", got)
	}
	if _, err := SessionChanges([]byte{SessionTrackSchema, 9, 6}); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated state: %v", err)
	}
}

func TestERR(t *testing.T) {
	e := NewError(CodePolicyDenied, "Airlock policy refuses DROP TABLE on orders")
	payload := AppendERR(nil, e)
	if want := cat(b("\xff\xcb\x04#42000"), b(e.Message)); !bytes.Equal(payload, want) {
		t.Fatalf("ERR % x, want % x", payload, want)
	}
	cases := []struct {
		name    string
		payload []byte
		want    mysql.MyError
	}{
		{"with sqlstate", payload, *e},
		{"without marker", b("\xff\x10\x04Too many connections"), mysql.MyError{Code: 1040, State: "HY000", Message: "Too many connections"}},
		{"short message", b("\xff\x10\x04#HY"), mysql.MyError{Code: 1040, State: "HY000", Message: "#HY"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseERR(tc.payload)
			if err != nil {
				t.Fatal(err)
			}
			if *got != tc.want {
				t.Errorf("got %+v, want %+v", *got, tc.want)
			}
		})
	}
	codes := map[uint16]string{CodeAccessDenied: "28000", CodePolicyDenied: "42000", CodeNotSupported: "42000",
		CodeHandshake: "08S01", CodeGateway: "HY000"}
	for code, state := range codes {
		if got := NewError(code, "x").State; got != state {
			t.Errorf("code %d has SQLSTATE %s, want %s", code, got, state)
		}
	}
}

func TestResultEnd(t *testing.T) {
	cases := []struct {
		name    string
		caps    uint32
		payload []byte
		end     bool
		status  uint16
		err     bool
	}{
		{"EOF", caps41, AppendEOF(nil, EOF{Status: 0x0a}), true, 0x0a, false},
		{"EOF announcing more results", caps41, AppendEOF(nil, EOF{Status: mysql.SERVER_MORE_RESULTS_EXISTS}), true, mysql.SERVER_MORE_RESULTS_EXISTS, false},
		{"OK under CLIENT_DEPRECATE_EOF", capsNoEOF, b("\xfe\x00\x00\x02\x00\x00\x00"), true, 2, false},
		{"ERR", caps41, AppendERR(nil, NewError(1317, "Query execution was interrupted")), true, 0, true},
		{"text row", caps41, b("\x011\x02ab"), false, 0, false},
		{"text row of an empty string", capsNoEOF, b("\x00"), false, 0, false},
		{"binary row", capsNoEOF, b("\x00\x00\x01\x00\x00\x00"), false, 0, false},
		{"NULL text row", caps41, b("\xfb"), false, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			end, status, err := ResultEnd(tc.payload, tc.caps)
			if end != tc.end || status != tc.status || (err != nil) != tc.err {
				t.Errorf("ResultEnd = %v %#x %v", end, status, err)
			}
		})
	}
	if !MoreResults(mysql.SERVER_MORE_RESULTS_EXISTS|mysql.SERVER_STATUS_AUTOCOMMIT) || MoreResults(mysql.SERVER_STATUS_AUTOCOMMIT) {
		t.Error("MoreResults")
	}
}

func TestClassifyAndCounts(t *testing.T) {
	kinds := map[string]struct {
		payload []byte
		want    ResponseKind
	}{
		"ok":         {b("\x00\x00\x00\x02\x00\x00\x00"), ResponseOK},
		"err":        {b("\xff\x10\x04x"), ResponseERR},
		"local file": {b("\xfb/etc/passwd"), ResponseLocalFile},
		"columns":    {b("\x03"), ResponseResultSet},
	}
	for name, tc := range kinds {
		if got := ClassifyResponse(tc.payload); got != tc.want {
			t.Errorf("%s: %d, want %d", name, got, tc.want)
		}
	}
	if n, err := ParseColumnCount(b("\xfc\x2c\x01")); err != nil || n != 300 {
		t.Errorf("ParseColumnCount = %d, %v", n, err)
	}
	for _, bad := range [][]byte{b("\x00"), b("\x02\x00"), b("\xfe\x00\x00\x00\x00\x01\x00\x00\x00")} {
		if _, err := ParseColumnCount(bad); err == nil {
			t.Errorf("column count % x accepted", bad)
		}
	}
	p := &PrepareOK{StatementID: 5, Columns: 2, Params: 3, Warnings: 1}
	got, err := ParsePrepareOK(AppendPrepareOK(nil, p))
	if err != nil || *got != *p {
		t.Errorf("PrepareOK round trip: %+v, %v", got, err)
	}
}

func TestColumn(t *testing.T) {
	col := &Column{Catalog: b("def"), Schema: b("shop"), Table: b("u"), OrgTable: b("users"), Name: b("mail"),
		OrgName: b("email"), Charset: 45, Length: 1020, Type: mysql.MYSQL_TYPE_VAR_STRING, Flags: mysql.NOT_NULL_FLAG}
	got, err := ParseColumn(AppendColumn(nil, col))
	if err != nil || !reflect.DeepEqual(got, col) {
		t.Errorf("round trip: %+v, %v", got, err)
	}
	col.Default = b("x")
	if got, err := ParseColumn(AppendColumn(nil, col)); err != nil || string(got.Default) != "x" {
		t.Errorf("field list default: %+v, %v", got, err)
	}
	if _, err := ParseColumn(AppendColumn(nil, col)[:20]); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated column: %v", err)
	}
}

func TestFamily(t *testing.T) {
	cases := []struct {
		typ     byte
		charset uint16
		flags   uint16
		length  uint32
		want    Family
	}{
		{mysql.MYSQL_TYPE_VAR_STRING, 45, 0, 80, FamilyText},
		{mysql.MYSQL_TYPE_VAR_STRING, binaryCharset, mysql.BINARY_FLAG, 16, FamilyBytes},
		{mysql.MYSQL_TYPE_STRING, binaryCharset, mysql.ENUM_FLAG, 1, FamilyText},
		{mysql.MYSQL_TYPE_BLOB, 45, mysql.BLOB_FLAG, 65535, FamilyText},
		{mysql.MYSQL_TYPE_BLOB, binaryCharset, mysql.BLOB_FLAG | mysql.BINARY_FLAG, 65535, FamilyBytes},
		{mysql.MYSQL_TYPE_JSON, binaryCharset, mysql.BLOB_FLAG, 0, FamilyJSON},
		{mysql.MYSQL_TYPE_LONGLONG, binaryCharset, 0, 20, FamilyNumber},
		{mysql.MYSQL_TYPE_NEWDECIMAL, binaryCharset, 0, 14, FamilyNumber},
		{mysql.MYSQL_TYPE_TINY, binaryCharset, 0, 1, FamilyBool},
		{mysql.MYSQL_TYPE_TINY, binaryCharset, 0, 4, FamilyNumber},
		{mysql.MYSQL_TYPE_BIT, binaryCharset, 0, 1, FamilyBool},
		{mysql.MYSQL_TYPE_BIT, binaryCharset, 0, 10, FamilyBytes},
		{mysql.MYSQL_TYPE_DATETIME, binaryCharset, 0, 26, FamilyTime},
		{mysql.MYSQL_TYPE_YEAR, binaryCharset, 0, 4, FamilyTime},
		{mysql.MYSQL_TYPE_GEOMETRY, binaryCharset, 0, 0, FamilyOther},
		{mysql.MYSQL_TYPE_NULL, binaryCharset, 0, 0, FamilyOther},
	}
	for _, tc := range cases {
		col := &Column{Type: tc.typ, Charset: tc.charset, Flags: tc.flags, Length: tc.length}
		if got := col.Family(); got != tc.want {
			t.Errorf("type 0x%02x charset %d length %d: %s, want %s", tc.typ, tc.charset, tc.length, got, tc.want)
		}
	}
	col := &Column{Type: mysql.MYSQL_TYPE_LONG, Flags: mysql.UNSIGNED_FLAG, Charset: binaryCharset}
	if typ, unsigned, binary := SplitNativeType(col.NativeType()); typ != mysql.MYSQL_TYPE_LONG || !unsigned || !binary {
		t.Errorf("SplitNativeType(%#x) = %#x %v %v", col.NativeType(), typ, unsigned, binary)
	}
}
