package wire

import (
	"bufio"
	"bytes"
	"maps"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// FuzzDecodeCommand decodes arbitrary commands under arbitrary flags: no
// panic, failures are ErrMalformed, and a plain COM_QUERY keeps its text.
func FuzzDecodeCommand(f *testing.F) {
	f.Add(b("\x03SELECT 1"), uint32(0))
	f.Add(cat(b("\x03\x02\x01"), []byte{0x02, 1}, b("\xfe\x00\x05trace\x08\x80\x01n"), b("\x03abcSELECT 1")), uint32(mysql.CLIENT_QUERY_ATTRIBUTES))
	f.Add(b("\x17\x01\x00\x00\x00\x00\x01\x00\x00\x00\x02\x01\x03\x00\xfd\x00\x2a\x00\x00\x00"), uint32(0))
	f.Add(b("\x17\x02\x00\x00\x00\x08\x01\x00\x00\x00\x01\x00\x01\xfe\x00\x01a\x01v"), uint32(mysql.CLIENT_QUERY_ATTRIBUTES))
	f.Add(b("\x11bob\x00\x03abcorders\x00\x2d\x00caching_sha2_password\x00\x06\x01k\x03val"), uint32(0xffffffff))
	f.Add(b("\x18\x01\x00\x00\x00\x01\x00chunk"), uint32(0))
	f.Add(b("\x04users\x00na%"), uint32(0))
	f.Add(b("\x12\x04\x00\x00\x00\x00\x00\x01\x00\x00\x00bin.000001"), uint32(0))
	stmts := statements(map[uint32]*Statement{
		1: {Params: 2},
		2: {Params: 0},
		3: {Params: 2, Types: []ParamType{{Type: mysql.MYSQL_TYPE_TIME}, {Type: mysql.MYSQL_TYPE_BLOB}}, LongData: []bool{true}},
	})
	f.Fuzz(func(t *testing.T, payload []byte, caps uint32) {
		cmd, err := DecodeCommand(payload, caps, stmts)
		if err != nil {
			return
		}
		if cmd.Code() != payload[0] {
			t.Fatalf("Code() 0x%02x for command 0x%02x", cmd.Code(), payload[0])
		}
		if q, ok := cmd.(*Query); ok && caps&mysql.CLIENT_QUERY_ATTRIBUTES == 0 && !bytes.Equal(q.Text, payload[1:]) {
			t.Fatal("query text differs from the payload")
		}
	})
}

// FuzzTextRow decodes arbitrary text rows: whatever decodes re-encodes to
// the same bytes.
func FuzzTextRow(f *testing.F) {
	f.Add(b("\x01a\xfb\x00"), uint8(3))
	f.Add(cat(b("\xfc\x2c\x01"), bytes.Repeat([]byte("x"), 300)), uint8(1))
	f.Add(b("\xfb\xfb"), uint8(2))
	f.Fuzz(func(t *testing.T, payload []byte, ncols uint8) {
		values, err := DecodeTextRow(payload, int(ncols), nil)
		if err != nil {
			return
		}
		if enc := AppendTextRow(nil, values); !bytes.Equal(enc, payload) {
			t.Fatalf("re-encoded % x, want % x", enc, payload)
		}
	})
}

// FuzzBinaryRow decodes arbitrary binary rows for arbitrary column types:
// whatever decodes re-encodes to the same bytes.
func FuzzBinaryRow(f *testing.F) {
	values := [][]byte{{0xff}, {1, 2}, nil, {1, 2, 3, 4}, {0, 0, 0x80, 0x3f}, {1, 2, 3, 4, 5, 6, 7, 8}, nil,
		{0xe8, 0x07, 1, 2}, {0xe8, 0x07, 1, 2, 3, 4, 5, 1, 0, 0, 0}, {1, 1, 0, 0, 0, 2, 3, 4}, b("héllo"), {}}
	types := []byte{mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_INT24,
		mysql.MYSQL_TYPE_FLOAT, mysql.MYSQL_TYPE_DOUBLE, mysql.MYSQL_TYPE_JSON, mysql.MYSQL_TYPE_DATE,
		mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_TIME, mysql.MYSQL_TYPE_VAR_STRING, mysql.MYSQL_TYPE_NEWDECIMAL}
	row, err := AppendBinaryRow(nil, types, values)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(row, types)
	f.Add(b("\x00\x00\x01\x00\x00\x00\x00\x03abc"), []byte{mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_BLOB})
	f.Fuzz(func(t *testing.T, payload, types []byte) {
		values, err := DecodeBinaryRow(payload, types, nil)
		if err != nil {
			return
		}
		enc, err := AppendBinaryRow(nil, types, values)
		if err != nil {
			t.Fatalf("decoded row does not encode: %v", err)
		}
		if !bytes.Equal(enc, payload) {
			t.Fatalf("re-encoded % x, want % x", enc, payload)
		}
	})
}

// FuzzHandshakeResponse parses arbitrary handshake responses: whatever
// parses re-encodes to a payload that parses to the same response.
func FuzzHandshakeResponse(f *testing.F) {
	caps := clientCaps | mysql.CLIENT_CONNECT_ATTRS
	f.Add(AppendHandshakeResponse(nil, &HandshakeResponse{Capabilities: caps, Charset: 45, User: "alice", Database: "orders",
		AuthPlugin: PluginCachingSHA2, AuthResponse: make([]byte, 32), Attributes: map[string]string{"_os": "linux"}}, false))
	f.Add(AppendHandshakeResponse(nil, &HandshakeResponse{Capabilities: caps | mysql.CLIENT_SSL}, true))
	f.Add(AppendHandshakeResponse(nil, &HandshakeResponse{Capabilities: mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION,
		User: "bob", AuthResponse: make([]byte, 20), MariaDBCapabilities: 0x1d}, false))
	f.Fuzz(func(t *testing.T, payload []byte) {
		h, err := ParseHandshakeResponse(payload)
		if err != nil {
			return
		}
		again, err := ParseHandshakeResponse(AppendHandshakeResponse(nil, h, false))
		if err != nil {
			t.Fatalf("re-encoded response does not parse: %v", err)
		}
		if !sameResponse(h, again) {
			t.Fatalf("re-parsed %+v, want %+v", again, h)
		}
	})
}

// sameResponse compares responses, taking absent and empty as equal.
func sameResponse(a, b *HandshakeResponse) bool {
	return a.Capabilities == b.Capabilities && a.MaxPacket == b.MaxPacket && a.Charset == b.Charset &&
		a.MariaDBCapabilities == b.MariaDBCapabilities && a.User == b.User && bytes.Equal(a.AuthResponse, b.AuthResponse) &&
		a.Database == b.Database && a.AuthPlugin == b.AuthPlugin && maps.Equal(a.Attributes, b.Attributes) &&
		a.ZstdLevel == b.ZstdLevel
}

// FuzzServerAuth drives the caller-facing auth machine with arbitrary
// packets: it never panics, and every step is a well-framed, valid outcome.
func FuzzServerAuth(f *testing.F) {
	f.Add(AppendHandshakeResponse(nil, &HandshakeResponse{Capabilities: clientCaps, User: "alice",
		AuthPlugin: PluginCachingSHA2, AuthResponse: make([]byte, 32)}, false), []byte{2}, false)
	f.Add(AppendHandshakeResponse(nil, &HandshakeResponse{Capabilities: clientCaps, User: "alice",
		AuthPlugin: PluginNative, AuthResponse: make([]byte, 20)}, false), make([]byte, 32), true)
	f.Add(AppendHandshakeResponse(nil, &HandshakeResponse{Capabilities: clientCaps | mysql.CLIENT_SSL}, true), []byte("x\x00"), false)
	key := serverKey(f)
	f.Fuzz(func(t *testing.T, first, second []byte, verdict bool) {
		a, _, err := NewServerAuth(ServerAuthConfig{Capabilities: ClientCapabilities(RelayCapabilities, true), Key: key, Nonce: testNonce})
		if err != nil {
			t.Fatal(err)
		}
		step := a.Next(pkt(1, first))
		for range 3 {
			if _, err := ReadPacket(bytes.NewReader(step.Output), 0); err != nil && len(step.Output) > 0 {
				t.Fatalf("unframed output: %v", err)
			}
			switch step.Action {
			case AuthCheckScramble:
				step = a.ScrambleChecked(verdict)
				continue
			case AuthReadMore, AuthStartTLS:
				step = a.Next(pkt(a.seq, second))
				continue
			case AuthRefused:
				if _, err := ParseERR(onePacket(t, step.Output).Payload); err != nil {
					t.Fatal(err)
				}
			}
			return
		}
	})
}

// FuzzResponses parses arbitrary server packets with every response
// decoder and reads them as framed streams: nothing panics.
func FuzzResponses(f *testing.F) {
	f.Add(mariadbGreeting, uint32(0))
	f.Add(b("\x00\x00\x00\x02\x40\x00\x00\x00\x09\x01\x07\x06orders"), uint32(capsTrack))
	f.Add(AppendColumn(nil, &Column{Catalog: b("def"), Name: b("id"), Type: mysql.MYSQL_TYPE_LONG}), uint32(0))
	f.Add(b("\xff\x10\x04#08S01Too many"), uint32(0))
	f.Fuzz(func(t *testing.T, payload []byte, caps uint32) {
		_, _ = ParseGreeting(payload)
		_, _ = ParseOK(payload, caps)
		_, _ = ParseERR(payload)
		_, _ = ParseEOF(payload)
		_, _ = ParseColumn(payload)
		_, _ = ParseColumnCount(payload)
		_, _ = ParsePrepareOK(payload)
		_, _ = SessionChanges(payload)
		_, _, _ = ResultEnd(payload, caps)
		r := NewPacketReader(bufio.NewReaderSize(bytes.NewReader(payload), 16), 1<<10)
		for {
			p, err := r.Next()
			if err != nil {
				return
			}
			if len(p.Raw) != len(p.Payload)+4*p.Frames {
				t.Fatalf("raw %d bytes for %d of payload in %d frames", len(p.Raw), len(p.Payload), p.Frames)
			}
		}
	})
}
