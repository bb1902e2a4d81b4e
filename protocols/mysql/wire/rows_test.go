package wire

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

func TestTextRow(t *testing.T) {
	long := bytes.Repeat([]byte("x"), 300)
	cases := []struct {
		name    string
		payload []byte
		values  [][]byte
	}{
		{"values and NULL", b("\x01a\xfb\x00"), [][]byte{b("a"), nil, {}}},
		{"two-byte length", cat(b("\xfc\x2c\x01"), long), [][]byte{long}},
		{"all NULL", b("\xfb\xfb"), [][]byte{nil, nil}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeTextRow(tc.payload, len(tc.values), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.values) {
				t.Errorf("values %q, want %q", got, tc.values)
			}
			if got[len(got)-1] == nil != (tc.values[len(tc.values)-1] == nil) {
				t.Error("NULL and empty confused")
			}
			if enc := AppendTextRow(nil, got); !bytes.Equal(enc, tc.payload) {
				t.Errorf("re-encoded % x, want % x", enc, tc.payload)
			}
		})
	}
	bad := map[string]struct {
		payload []byte
		n       int
	}{
		"too few values":      {b("\x01a"), 2},
		"trailing bytes":      {b("\x01a\x01b"), 1},
		"overrun":             {b("\x05ab"), 1},
		"non-canonical":       {b("\xfc\x01\x00a"), 1},
		"invalid length byte": {b("\xff"), 1},
	}
	for name, tc := range bad {
		if _, err := DecodeTextRow(tc.payload, tc.n, nil); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestTextRowMasking(t *testing.T) {
	row := AppendTextRow(nil, [][]byte{b("42"), b("alice@example.com"), nil})
	values, err := DecodeTextRow(row, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	values[1] = bytes.Repeat([]byte("*"), 260) // the length now takes three bytes
	masked := AppendTextRow(nil, values)
	again, err := DecodeTextRow(masked, 3, nil)
	if err != nil || string(again[0]) != "42" || len(again[1]) != 260 || again[2] != nil {
		t.Errorf("masked row decodes as %q, %v", again, err)
	}
}

// binaryTypes covers every layout of the binary protocol.
var binaryTypes = []byte{
	mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_YEAR, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_LONG,
	mysql.MYSQL_TYPE_FLOAT, mysql.MYSQL_TYPE_LONGLONG, mysql.MYSQL_TYPE_DOUBLE, mysql.MYSQL_TYPE_DATE,
	mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIME, mysql.MYSQL_TYPE_VAR_STRING,
	mysql.MYSQL_TYPE_BLOB, mysql.MYSQL_TYPE_JSON, mysql.MYSQL_TYPE_NEWDECIMAL, mysql.MYSQL_TYPE_BIT,
	mysql.MYSQL_TYPE_ENUM, mysql.MYSQL_TYPE_GEOMETRY, mysql.MYSQL_TYPE_NULL,
}

func TestBinaryRow(t *testing.T) {
	values := [][]byte{
		{0xff}, {1, 2}, {0xe8, 0x07}, {1, 2, 3, 0}, {1, 2, 3, 4},
		{0, 0, 0x80, 0x3f}, {1, 2, 3, 4, 5, 6, 7, 8}, {0, 0, 0, 0, 0, 0, 0xf0, 0x3f}, {0xe8, 0x07, 1, 2},
		{0xe8, 0x07, 1, 2, 3, 4, 5, 1, 0, 0, 0}, {0xe8, 0x07, 1, 2, 3, 4, 5}, {1, 1, 0, 0, 0, 2, 3, 4, 5, 0, 0, 0},
		b("héllo"), bytes.Repeat([]byte{0}, 70000), b(`{"a":1}`), b("-12.3400"), {0x02, 0x01},
		b("b"), b("\x00\x00\x00\x00\x01\x01"), {},
	}
	payload, err := AppendBinaryRow(nil, binaryTypes, values)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeBinaryRow(payload, binaryTypes, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, values) {
		t.Errorf("values differ:\n%q\n%q", got, values)
	}
	nulls := make([][]byte, len(binaryTypes))
	payload, err = AppendBinaryRow(nil, binaryTypes, nulls)
	if err != nil {
		t.Fatal(err)
	}
	if want := append([]byte{0, 0xfc, 0xff}, 0x3f); !bytes.Equal(payload, want) {
		t.Errorf("all-NULL row % x, want % x", payload, want)
	}
	if got, err := DecodeBinaryRow(payload, binaryTypes, got); err != nil || !reflect.DeepEqual(got, nulls) {
		t.Errorf("all-NULL row decodes as %q, %v", got, err)
	}
}

func TestBinaryRowRejects(t *testing.T) {
	types := []byte{mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_VAR_STRING}
	cases := map[string][]byte{
		"wrong header":         b("\x01\x00\x01\x00\x00\x00\x00\x00"),
		"number cut short":     b("\x00\x00\x01\x00"),
		"temporal length 5":    b("\x00\x00\x01\x00\x00\x00\x05\x01\x02\x03\x04\x05\x00"),
		"reserved bitmap bits": b("\x00\x03\x01\x00\x00\x00\x00\x00"),
		"bits past the values": b("\x00\x80\x01\x00\x00\x00\x00\x00"),
		"trailing bytes":       b("\x00\x00\x01\x00\x00\x00\x00\x00\x99"),
		"non-canonical string": b("\x00\x00\x01\x00\x00\x00\x00\xfc\x00\x00"),
	}
	for name, payload := range cases {
		if _, err := DecodeBinaryRow(payload, types, nil); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, values := range map[string][][]byte{
		"masked number":   {b("x"), {}, {}},
		"masked temporal": {{0, 0, 0, 0}, b("2024-01-01"), {}},
		"too few values":  {{0, 0, 0, 0}},
	} {
		if _, err := AppendBinaryRow(nil, types, values); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}
