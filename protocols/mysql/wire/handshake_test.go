package wire

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// mariadbGreeting is the greeting of MariaDB 10.11 as captured on the wire.
var mariadbGreeting = []byte("\n5.5.5-10.11.19-MariaDB-0+deb12u1\x00\x13\x00\x00\x00aG}aOGTP\x00\xfe\xf7-\x02\x00\xff\x81" +
	"\x15\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00uz(VV-~Tf'.Q\x00mysql_native_password\x00")

func TestParseGreetingMariaDB(t *testing.T) {
	g, err := ParseGreeting(mariadbGreeting)
	if err != nil {
		t.Fatal(err)
	}
	want := &Greeting{
		ServerVersion: "5.5.5-10.11.19-MariaDB-0+deb12u1", ConnectionID: 19,
		Nonce: []byte("aG}aOGTPuz(VV-~Tf'.Q"), Capabilities: 0x81fff7fe, Charset: 45, Status: 2,
		MariaDBCapabilities: 0x1d, AuthPlugin: PluginNative,
	}
	if !reflect.DeepEqual(g, want) {
		t.Errorf("got %+v\nwant %+v", g, want)
	}
	if got := AppendGreeting(nil, g); !bytes.Equal(got, mariadbGreeting) {
		t.Errorf("re-encoded greeting differs:\n%q\n%q", got, mariadbGreeting)
	}
}

func TestParseGreetingRefusal(t *testing.T) {
	payload := AppendERR(nil, NewError(1040, "Too many connections"))
	_, err := ParseGreeting(payload)
	var me *mysql.MyError
	if !asMyError(err, &me) || me.Code != 1040 {
		t.Errorf("err = %v, want the server's ERR 1040", err)
	}
	if _, err := ParseGreeting([]byte{9, 'x', 0}); err == nil {
		t.Error("protocol version 9 accepted")
	}
}

func TestHandshakeResponseRoundTrip(t *testing.T) {
	base := mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_LONG_PASSWORD
	cases := []struct {
		name string
		h    HandshakeResponse
	}{
		{"one-byte auth length", HandshakeResponse{Capabilities: base, MaxPacket: 1 << 24, Charset: 45, User: "alice", AuthResponse: []byte("0123456789abcdef0123456789abcdef")}},
		{"length-encoded auth, plugin, database, attributes", HandshakeResponse{
			Capabilities: base | mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | mysql.CLIENT_CONNECT_WITH_DB | mysql.CLIENT_CONNECT_ATTRS,
			Charset:      255, User: "bob", AuthResponse: bytes.Repeat([]byte{7}, 300), Database: "orders",
			AuthPlugin: PluginCachingSHA2, Attributes: map[string]string{"_client_name": "libmariadb", "program_name": "mysql"},
		}},
		{"MariaDB extended capabilities", HandshakeResponse{Capabilities: base &^ mysql.CLIENT_LONG_PASSWORD, MariaDBCapabilities: 0x1d, User: "m", AuthResponse: []byte{}}},
		{"zstd level", HandshakeResponse{Capabilities: base | mysql.CLIENT_ZSTD_COMPRESSION_ALGORITHM, User: "z", AuthResponse: []byte{}, ZstdLevel: 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			payload := AppendHandshakeResponse(nil, &tc.h, false)
			if IsSSLRequest(payload) {
				t.Error("a full response taken for an SSLRequest")
			}
			got, err := ParseHandshakeResponse(payload)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.h) {
				t.Errorf("got %+v\nwant %+v", *got, tc.h)
			}
		})
	}
}

func TestSSLRequest(t *testing.T) {
	h := &HandshakeResponse{Capabilities: mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SSL, MaxPacket: 1 << 24, Charset: 45}
	payload := AppendHandshakeResponse(nil, h, true)
	if len(payload) != 32 || !IsSSLRequest(payload) {
		t.Fatalf("SSLRequest of %d bytes not recognised", len(payload))
	}
	got, err := ParseHandshakeResponse(payload)
	if err != nil || got.User != "" || got.Capabilities != h.Capabilities {
		t.Errorf("parsed %+v, %v", got, err)
	}
}

func TestParseHandshakeResponseRejects(t *testing.T) {
	cases := map[string][]byte{
		"pre-4.1 client": make([]byte, 40),
		"truncated":      {0x00, 0x02, 0, 0, 0},
		"auth overruns": append(append(AppendHandshakeResponse(nil, &HandshakeResponse{
			Capabilities: mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION}, true), "u\x00"...), 40, 1, 2),
	}
	for name, payload := range cases {
		if _, err := ParseHandshakeResponse(payload); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestClientCapabilities(t *testing.T) {
	mariadb := uint32(0x81fff7fe)
	caps := ClientCapabilities(mariadb, true)
	if caps&mysql.CLIENT_LONG_PASSWORD == 0 {
		t.Error("CLIENT_LONG_PASSWORD missing: MariaDB clients would send extended capabilities")
	}
	if caps&mysql.CLIENT_SSL == 0 || ClientCapabilities(mariadb, false)&mysql.CLIENT_SSL != 0 {
		t.Error("CLIENT_SSL does not follow the tls argument")
	}
	for _, flag := range []uint32{mysql.CLIENT_QUERY_ATTRIBUTES, mysql.CLIENT_COMPRESS, mysql.CLIENT_LOCAL_FILES, mysql.CLIENT_REMEMBER_OPTIONS} {
		if caps&flag != 0 {
			t.Errorf("%s offered to clients of MariaDB", mysql.CapNames[flag])
		}
	}
	if caps&mysql.CLIENT_DEPRECATE_EOF == 0 || caps&mysql.CLIENT_SESSION_TRACK == 0 {
		t.Error("flags the upstream has are not offered")
	}
	if err := CheckRelay(caps, mariadb|mysql.CLIENT_LONG_PASSWORD); err != nil {
		t.Errorf("CheckRelay: %v", err)
	}
	err := CheckRelay(caps&^mysql.CLIENT_DEPRECATE_EOF, caps)
	if err == nil || !strings.Contains(err.Error(), "CLIENT_DEPRECATE_EOF") {
		t.Errorf("CheckRelay = %v, want the disagreement on CLIENT_DEPRECATE_EOF", err)
	}
}

func TestNewNonce(t *testing.T) {
	a, err := NewNonce()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewNonce()
	if len(a) != NonceLen || bytes.Equal(a, b) {
		t.Fatalf("nonces %q %q", a, b)
	}
	if bytes.IndexByte(a, 0) >= 0 || bytes.ContainsFunc(a, func(r rune) bool { return r > 0x7f }) {
		t.Errorf("nonce %q has NUL or 8-bit bytes", a)
	}
}
