package wire

import (
	"bytes"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// resultSet is a result read from a connection, every packet checked to
// re-encode byte for byte.
type resultSet struct {
	cols   []*Column
	rows   [][]byte // raw row payloads
	status uint16
	ok     *OK   // the OK of a command without rows
	err    error // the server's ERR
}

// readResult reads one response to a COM_QUERY or COM_STMT_EXECUTE,
// keeping the rows raw for the caller to decode.
func readResult(t *testing.T, r *PacketReader, caps uint32) resultSet {
	t.Helper()
	first := next(t, r)
	switch ClassifyResponse(first) {
	case ResponseOK:
		ok, err := ParseOK(first, caps)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendOK(nil, ok, caps); !bytes.Equal(got, first) {
			t.Errorf("OK re-encodes as % x, was % x", got, first)
		}
		return resultSet{status: ok.Status, ok: ok}
	case ResponseERR:
		e, err := ParseERR(first)
		if err != nil {
			t.Fatal(err)
		}
		return resultSet{err: e}
	}
	n, err := ParseColumnCount(first)
	if err != nil {
		t.Fatal(err)
	}
	var rs resultSet
	rs.cols = readColumns(t, r, caps, n)
	for {
		p := next(t, r)
		end, status, err := ResultEnd(p, caps)
		if end {
			rs.status, rs.err = status, err
			return rs
		}
		rs.rows = append(rs.rows, p)
	}
}

// readColumns reads n column definitions and, without
// CLIENT_DEPRECATE_EOF, the EOF after them.
func readColumns(t *testing.T, r *PacketReader, caps uint32, n int) []*Column {
	t.Helper()
	cols := make([]*Column, n)
	for i := range cols {
		p := next(t, r)
		col, err := ParseColumn(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendColumn(nil, col); !bytes.Equal(got, p) {
			t.Errorf("column %d re-encodes as % x, was % x", i, got, p)
		}
		cols[i] = col
	}
	if caps&mysql.CLIENT_DEPRECATE_EOF == 0 && n > 0 {
		if p := next(t, r); !IsEOF(p) {
			t.Fatalf("% x after the column definitions, want EOF", p)
		}
	}
	return cols
}

// next returns a copy of the next packet's payload.
func next(t *testing.T, r *PacketReader) []byte {
	t.Helper()
	p, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(p.Payload)
}
