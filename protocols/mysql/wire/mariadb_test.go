package wire

import (
	"bufio"
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/airlock-gw/airlock/protocols/testenv"
)

// allTypesColumns are the columns of the MariaDB test table, in order.
var allTypesColumns = []string{"id", "v", "t", "bl", "j", "i", "bi", "u", "d", "f", "db", "dt", "dtm", "tm", "ts", "bt", "e", "s", "y", "ti"}

// allTypesTable creates a table with a column of each kind and four rows:
// ordinary values, NULLs, empty and zero values, long values.
func allTypesTable(t *testing.T, admin *sql.DB) string {
	t.Helper()
	name := testenv.Unique("airlock_types")
	stmts := []string{
		`CREATE TABLE ` + name + ` (id INT PRIMARY KEY, v VARCHAR(64), t MEDIUMTEXT, bl MEDIUMBLOB, j JSON, i INT,
			bi BIGINT, u INT UNSIGNED, d DECIMAL(12,4), f FLOAT, db DOUBLE, dt DATE, dtm DATETIME(6), tm TIME(3),
			ts TIMESTAMP(6) NULL, bt BIT(10), e ENUM('a','b'), s SET('x','y'), y YEAR, ti TINYINT(1))`,
		`INSERT INTO ` + name + ` VALUES
			(1, 'héllo', 'a text', 0x00FF10, '{"k": [1, 2]}', -42, 9007199254740993, 4294967295, -12.34, 1.5, -2.25,
			 '2024-02-29', '2024-02-29 13:14:15.123456', '-12:34:56.789', '2024-02-29 13:14:15.654321', b'1010101010',
			 'b', 'x,y', 2024, 1),
			(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
			(3, '', '', '', '[]', 0, 0, 0, 0, 0, 0, '1000-01-01', '1000-01-01 00:00:00', '00:00:00', '2000-01-01 00:00:00',
			 b'0', 'a', '', 1901, 0),
			(4, REPEAT('é', 64), REPEAT('t', 300), REPEAT('b', 70000), CONCAT('"', REPEAT('j', 1000), '"'), 2147483647,
			 -9223372036854775808, 0, 99999999.9999, -3.4e38, 1.7976931348623157e308, '9999-12-31',
			 '9999-12-31 23:59:59.999999', '838:59:59.000', '2038-01-19 03:14:07.999999', b'1111111111', 'a', 'y', 2155, -1)`,
	}
	for _, s := range stmts {
		if _, err := admin.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP TABLE " + name); err != nil {
			t.Errorf("drop table: %v", err)
		}
	})
	return name
}

// firstRowText is what the text protocol returns for row 1.
var firstRowText = map[string]string{
	"v": "héllo", "t": "a text", "bl": "\x00\xff\x10", "j": `{"k": [1, 2]}`, "i": "-42", "bi": "9007199254740993",
	"u": "4294967295", "d": "-12.3400", "f": "1.5", "db": "-2.25", "dt": "2024-02-29", "dtm": "2024-02-29 13:14:15.123456",
	"tm": "-12:34:56.789", "ts": "2024-02-29 13:14:15.654321", "bt": "\x02\xaa", "e": "b", "s": "x,y", "y": "2024", "ti": "1",
}

// session is a raw upstream session for the result tests.
type session struct {
	up *Upstream
	r  *PacketReader
}

func (s *session) send(t *testing.T, payload []byte) {
	t.Helper()
	if _, err := WritePacket(s.up.Conn, 0, payload); err != nil {
		t.Fatal(err)
	}
}

func (s *session) query(t *testing.T, text string) resultSet {
	t.Helper()
	s.send(t, AppendQuery(nil, s.up.Capabilities, []byte(text)))
	return readResult(t, s.r, s.up.Capabilities)
}

func TestMariaDBResults(t *testing.T) {
	user, password, admin := mariadbUser(t)
	table := allTypesTable(t, admin)
	variants := map[string]uint32{
		"CLIENT_DEPRECATE_EOF":  RelayCapabilities,
		"EOF packets":           RelayCapabilities &^ mysql.CLIENT_DEPRECATE_EOF,
		"without session track": RelayCapabilities &^ mysql.CLIENT_SESSION_TRACK,
	}
	for name, caps := range variants {
		t.Run(name, func(t *testing.T) {
			up, err := dialTest(t, DialConfig{Address: testenv.MariaDBAddr, User: user, Password: password, Database: "test", Capabilities: caps})
			if err != nil {
				t.Fatal(err)
			}
			s := &session{up: up, r: NewPacketReader(bufio.NewReaderSize(up.Conn, 4096), 1<<24)}
			text := checkTextResult(t, s, table)
			checkBinaryResult(t, s, table, text)
			checkOtherResponses(t, s)
		})
	}
}

// checkTextResult reads the table with COM_QUERY, re-encodes every row and
// returns the decoded values.
func checkTextResult(t *testing.T, s *session, table string) [][][]byte {
	t.Helper()
	rs := s.query(t, "SELECT * FROM "+table+" ORDER BY id")
	if rs.err != nil || len(rs.cols) != len(allTypesColumns) || len(rs.rows) != 4 {
		t.Fatalf("result: err %v, %d columns, %d rows", rs.err, len(rs.cols), len(rs.rows))
	}
	var rows [][][]byte
	for i, raw := range rs.rows {
		values, err := DecodeTextRow(raw, len(rs.cols), nil)
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if enc := AppendTextRow(nil, values); !bytes.Equal(enc, raw) {
			t.Errorf("text row %d re-encodes differently", i)
		}
		rows = append(rows, values)
	}
	for i, col := range rs.cols {
		name := string(col.Name)
		if name != allTypesColumns[i] {
			t.Fatalf("column %d is %s", i, name)
		}
		if want, ok := firstRowText[name]; ok && string(rows[0][i]) != want {
			t.Errorf("row 1 %s = %q, want %q", name, rows[0][i], want)
		}
		if i > 0 && rows[1][i] != nil {
			t.Errorf("row 2 %s = %q, want NULL", name, rows[1][i])
		}
		if i > 0 && i < 4 && (rows[2][i] == nil || len(rows[2][i]) != 0) {
			t.Errorf("row 3 %s = %q, want empty", name, rows[2][i])
		}
	}
	if len(rows[3][3]) != 70000 {
		t.Errorf("long blob has %d bytes", len(rows[3][3]))
	}
	wantFamilies := map[string]Family{"v": FamilyText, "bl": FamilyBytes, "i": FamilyNumber, "d": FamilyNumber,
		"dtm": FamilyTime, "ts": FamilyTime, "bt": FamilyBytes, "e": FamilyText, "s": FamilyText, "ti": FamilyBool, "j": FamilyText}
	for _, col := range rs.cols {
		if want, ok := wantFamilies[string(col.Name)]; ok && col.Family() != want {
			t.Errorf("column %s (type 0x%02x, charset %d) is %s, want %s", col.Name, col.Type, col.Charset, col.Family(), want)
		}
	}
	return rows
}

// checkBinaryResult reads the table with COM_STMT_PREPARE and
// COM_STMT_EXECUTE, re-encodes every row and compares it with the text one.
func checkBinaryResult(t *testing.T, s *session, table string, text [][][]byte) {
	t.Helper()
	caps := s.up.Capabilities
	s.send(t, append([]byte{mysql.COM_STMT_PREPARE}, "SELECT * FROM "+table+" WHERE id >= ? ORDER BY id"...))
	prep, err := ParsePrepareOK(next(t, s.r))
	if err != nil {
		t.Fatal(err)
	}
	if prep.Params != 1 || int(prep.Columns) != len(allTypesColumns) {
		t.Fatalf("prepare OK %+v", prep)
	}
	readColumns(t, s.r, caps, int(prep.Params))
	readColumns(t, s.r, caps, int(prep.Columns))

	exec := appendExecute(nil, prep.StatementID, []Param{{Type: mysql.MYSQL_TYPE_LONGLONG, Value: make([]byte, 8)}})
	cmd, err := DecodeCommand(exec, caps, statements(map[uint32]*Statement{prep.StatementID: {Params: 1}}))
	if err != nil || len(cmd.(*Execute).Params) != 1 {
		t.Fatalf("own COM_STMT_EXECUTE decodes as %+v, %v", cmd, err)
	}
	s.send(t, exec)
	rs := readResult(t, s.r, caps)
	if rs.err != nil || len(rs.rows) != 4 {
		t.Fatalf("execute: %v, %d rows", rs.err, len(rs.rows))
	}
	types := Types(rs.cols)
	for i, raw := range rs.rows {
		values, err := DecodeBinaryRow(raw, types, nil)
		if err != nil {
			t.Fatalf("binary row %d: %v", i, err)
		}
		enc, err := AppendBinaryRow(nil, types, values)
		if err != nil || !bytes.Equal(enc, raw) {
			t.Errorf("binary row %d re-encodes differently: %v", i, err)
		}
		for j, v := range values {
			if layout, _ := binaryFormat(types[j]); layout == layoutLenenc && !bytes.Equal(v, text[i][j]) {
				t.Errorf("row %d %s: binary %q, text %q", i+1, allTypesColumns[j], v, text[i][j])
			}
			if (v == nil) != (text[i][j] == nil) {
				t.Errorf("row %d %s: NULL in one protocol only", i+1, allTypesColumns[j])
			}
		}
		if i == 0 {
			checkBinaryNumbers(t, values)
		}
	}
	s.send(t, appendU32([]byte{mysql.COM_STMT_CLOSE}, prep.StatementID))
}

// checkBinaryNumbers checks the opaque number values of row 1 with
// go-mysql's own readers.
func checkBinaryNumbers(t *testing.T, values [][]byte) {
	t.Helper()
	col := func(name string) []byte {
		for i, n := range allTypesColumns {
			if n == name {
				return values[i]
			}
		}
		t.Fatalf("no column %s", name)
		return nil
	}
	got := fmt.Sprint(mysql.ParseBinaryInt32(col("i")), mysql.ParseBinaryInt64(col("bi")), mysql.ParseBinaryUint32(col("u")),
		mysql.ParseBinaryFloat32(col("f")), mysql.ParseBinaryFloat64(col("db")), mysql.ParseBinaryUint16(col("y")),
		mysql.ParseBinaryInt8(col("ti")))
	if want := "-42 9007199254740993 4294967295 1.5 -2.25 2024 1"; got != want {
		t.Errorf("numbers %s, want %s", got, want)
	}
	if dtm := col("dtm"); len(dtm) != 11 {
		t.Errorf("DATETIME(6) with microseconds has %d bytes, want 11", len(dtm))
	}
}

// checkOtherResponses covers multi-results, ERR and OK with session state.
func checkOtherResponses(t *testing.T, s *session) {
	t.Helper()
	first := s.query(t, "SELECT 1; SELECT 2")
	if !MoreResults(first.status) || len(first.rows) != 1 {
		t.Errorf("first result: status %#x, %d rows", first.status, len(first.rows))
	}
	second := readResult(t, s.r, s.up.Capabilities)
	if MoreResults(second.status) || len(second.rows) != 1 {
		t.Errorf("second result: status %#x, %d rows", second.status, len(second.rows))
	}
	rs := s.query(t, "SELECT * FROM airlock_no_such_table")
	var me *mysql.MyError
	if !errors.As(rs.err, &me) || me.Code != 1146 || me.State != "42S02" {
		t.Errorf("missing table: %v", rs.err)
	}
	rs = s.query(t, "USE test")
	if rs.ok == nil {
		t.Fatal("USE did not answer OK")
	}
	tracked := s.up.Capabilities&mysql.CLIENT_SESSION_TRACK != 0
	changes, err := SessionChanges(rs.ok.SessionState)
	if err != nil {
		t.Fatal(err)
	}
	schema := ""
	for _, c := range changes {
		if c.Type == SessionTrackSchema {
			schema = string(c.Name)
		}
	}
	if tracked != (schema == "test") {
		t.Errorf("session track %v, schema change %q (status %#x)", tracked, schema, rs.ok.Status)
	}
	if rs := s.query(t, "DO 1"); rs.ok == nil || rs.ok.AffectedRows != 0 {
		t.Errorf("DO 1: %+v", rs)
	}
}

// appendExecute builds a COM_STMT_EXECUTE binding params (no query
// attributes: MariaDB has none).
func appendExecute(dst []byte, id uint32, params []Param) []byte {
	dst = appendU32(append(dst, mysql.COM_STMT_EXECUTE), id)
	dst = append(dst, 0, 1, 0, 0, 0)
	if len(params) == 0 {
		return dst
	}
	bitmap := make([]byte, nullBitmapLen(len(params), 0))
	for i, p := range params {
		if p.Null {
			bitmap[i/8] |= 1 << (i % 8)
		}
	}
	dst = append(append(dst, bitmap...), 1)
	for _, p := range params {
		flags := byte(0)
		if p.Unsigned {
			flags = paramUnsigned
		}
		dst = append(dst, p.Type, flags)
	}
	for _, p := range params {
		if !p.Null {
			dst, _ = appendBinaryValue(dst, p.Type, p.Value)
		}
	}
	return dst
}
