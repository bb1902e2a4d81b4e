package recording

import "testing"

func TestMySQLBinaryText(t *testing.T) {
	for _, tc := range []struct {
		native uint32
		b      []byte
		want   string
		ok     bool
	}{
		{myTiny, []byte{0xff}, "-1", true},
		{myTiny | myUnsigned, []byte{0xff}, "255", true},
		{myLong, []byte{0xd6, 0xff, 0xff, 0xff}, "-42", true},
		{myLong | myUnsigned, []byte{0xff, 0xff, 0xff, 0xff}, "4294967295", true},
		{myLongLong, []byte{1, 0, 0, 0, 0, 0, 0x20, 0}, "9007199254740993", true},
		{myYear, []byte{0xe8, 0x07}, "2024", true},
		{myDouble, []byte{0, 0, 0, 0, 0, 0, 2, 0xc0}, "-2.25", true},
		{myFloat, []byte{0, 0, 0xc0, 0x3f}, "1.5", true},
		{myDate, []byte{0xe8, 0x07, 2, 29}, "2024-02-29", true},
		{myDatetime, []byte{0xe8, 0x07, 2, 29, 13, 14, 15, 0x40, 0xe2, 0x01, 0}, "2024-02-29 13:14:15.123456", true},
		{myTimestamp, nil, "0000-00-00 00:00:00", true},
		{myTime, []byte{1, 0, 0, 0, 0, 12, 34, 56}, "-12:34:56", true},
		{myTime, []byte{0, 34, 0, 0, 0, 22, 59, 59, 0, 0, 0, 0}, "838:59:59.000000", true},
		{myLong, []byte{1, 2}, "", false},
		{253, []byte("text"), "", false},
		{myDate, []byte{1, 2, 3}, "", false},
	} {
		got, ok := mysqlBinaryText(tc.native, tc.b)
		if got != tc.want || ok != tc.ok {
			t.Errorf("mysqlBinaryText(%d, % x) = %q, %v; want %q, %v", tc.native, tc.b, got, ok, tc.want, tc.ok)
		}
	}
}
