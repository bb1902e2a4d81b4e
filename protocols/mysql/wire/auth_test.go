package wire

import (
	"bytes"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

const testToken = "tok_3f9a2c7e"

var testNonce = []byte("abcdefghij0123456789")

// clientCaps is what a current MySQL client sends.
const clientCaps = mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_LONG_PASSWORD |
	mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | mysql.CLIENT_CONNECT_WITH_DB |
	mysql.CLIENT_DEPRECATE_EOF | mysql.CLIENT_TRANSACTIONS

func newAuth(t *testing.T, cfg ServerAuthConfig) *ServerAuth {
	t.Helper()
	cfg.ServerVersion, cfg.Nonce = "8.0.36-airlock", testNonce
	if cfg.Capabilities == 0 {
		cfg.Capabilities = ClientCapabilities(RelayCapabilities, false)
	}
	a, greeting, err := NewServerAuth(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := onePacket(t, greeting)
	g, err := ParseGreeting(p.Payload)
	if err != nil || p.Seq != 0 {
		t.Fatalf("greeting seq %d: %v", p.Seq, err)
	}
	if g.AuthPlugin != PluginCachingSHA2 || !bytes.Equal(g.Nonce, testNonce) || g.ServerVersion != "8.0.36-airlock" {
		t.Fatalf("greeting %+v", g)
	}
	return a
}

// response frames a handshake response at seq.
func response(seq uint8, plugin string, auth []byte, caps uint32) Packet {
	h := &HandshakeResponse{Capabilities: caps, Charset: 45, User: "alice", Database: "orders", AuthPlugin: plugin, AuthResponse: auth}
	return Packet{Seq: seq, Frames: 1, Payload: AppendHandshakeResponse(nil, h, false)}
}

func pkt(seq uint8, payload []byte) Packet { return Packet{Seq: seq, Frames: 1, Payload: payload} }

// wantStep checks a step's action and the payloads it writes.
func wantStep(t *testing.T, step AuthStep, action AuthAction, payloads ...[]byte) {
	t.Helper()
	if step.Action != action {
		t.Fatalf("action %d (err %v), want %d", step.Action, step.Err, action)
	}
	got := packets(t, step.Output)
	if len(got) != len(payloads) {
		t.Fatalf("%d packets written, want %d", len(got), len(payloads))
	}
	for i, p := range payloads {
		if p != nil && !bytes.Equal(got[i].Payload, p) {
			t.Errorf("packet %d = %q, want %q", i, got[i].Payload, p)
		}
	}
}

// wantRefused checks a refusal's ERR packet.
func wantRefused(t *testing.T, step AuthStep, code uint16, msgPart string) {
	t.Helper()
	if step.Action != AuthRefused {
		t.Fatalf("action %d, want AuthRefused", step.Action)
	}
	e, err := ParseERR(onePacket(t, step.Output).Payload)
	if err != nil {
		t.Fatal(err)
	}
	if e.Code != code || e.State != mysql.MySQLState[code] || !strings.Contains(e.Message, msgPart) {
		t.Errorf("ERR %d %s %q, want %d containing %q", e.Code, e.State, e.Message, code, msgPart)
	}
}

func TestVerifyCachingSHA2(t *testing.T) {
	good := mysql.CalcCachingSha2Password(testNonce, []byte(testToken))
	cases := []struct {
		name     string
		stored   [32]byte
		nonce    []byte
		scramble []byte
		want     bool
	}{
		{"right token", tokenHash(testToken), testNonce, good, true},
		{"wrong token", tokenHash("other"), testNonce, good, false},
		{"other nonce", tokenHash(testToken), []byte("01234567890123456789"), good, false},
		{"short scramble", tokenHash(testToken), testNonce, good[:31], false},
		{"empty scramble", tokenHash(testToken), testNonce, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := VerifyCachingSHA2(tc.stored, tc.nonce, tc.scramble); got != tc.want {
				t.Errorf("VerifyCachingSHA2 = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestServerAuthFastPath(t *testing.T) {
	a := newAuth(t, ServerAuthConfig{})
	scramble := mysql.CalcCachingSha2Password(testNonce, []byte(testToken))
	wantStep(t, a.Next(response(1, PluginCachingSHA2, scramble, clientCaps)), AuthCheckScramble)
	if a.Response().User != "alice" || a.Response().Database != "orders" {
		t.Errorf("response %+v", a.Response())
	}
	if !VerifyCachingSHA2(tokenHash(testToken), a.Nonce(), a.Scramble()) {
		t.Fatal("scramble does not verify")
	}
	wantStep(t, a.ScrambleChecked(true), AuthAccepted, []byte{0x01, 0x03})
	ok := onePacket(t, a.Accept(mysql.SERVER_STATUS_AUTOCOMMIT))
	if ok.Seq != 3 {
		t.Errorf("OK has sequence id %d, want 3", ok.Seq)
	}
	if parsed, err := ParseOK(ok.Payload, a.Capabilities()); err != nil || parsed.Status != mysql.SERVER_STATUS_AUTOCOMMIT {
		t.Errorf("OK %+v, %v", parsed, err)
	}
	if a.Capabilities()&mysql.CLIENT_DEPRECATE_EOF == 0 {
		t.Error("negotiated capabilities lost CLIENT_DEPRECATE_EOF")
	}
}

func TestServerAuthFullOverTLS(t *testing.T) {
	a := newAuth(t, ServerAuthConfig{Capabilities: ClientCapabilities(RelayCapabilities, true)})
	ssl := AppendHandshakeResponse(nil, &HandshakeResponse{Capabilities: clientCaps | mysql.CLIENT_SSL}, true)
	wantStep(t, a.Next(pkt(1, ssl)), AuthStartTLS)
	if !a.Secure() {
		t.Error("not secure after StartTLS")
	}
	scramble := mysql.CalcCachingSha2Password(testNonce, []byte("a.jwt.token"))
	wantStep(t, a.Next(response(2, PluginCachingSHA2, scramble, clientCaps|mysql.CLIENT_SSL)), AuthCheckScramble)
	wantStep(t, a.ScrambleChecked(false), AuthReadMore, []byte{0x01, 0x04})
	wantStep(t, a.Next(pkt(4, []byte("a.jwt.token\x00"))), AuthCheckPassword)
	if a.Password() != "a.jwt.token" {
		t.Errorf("password %q", a.Password())
	}
	if deny := onePacket(t, a.Deny(NewError(CodeAccessDenied, "no"))); deny.Seq != 5 {
		t.Errorf("ERR has sequence id %d, want 5", deny.Seq)
	}
}

func TestServerAuthRSA(t *testing.T) {
	key := serverKey(t)
	a := newAuth(t, ServerAuthConfig{Key: key})
	wantStep(t, a.Next(response(1, PluginCachingSHA2, make([]byte, 32), clientCaps)), AuthCheckScramble)
	wantStep(t, a.ScrambleChecked(false), AuthReadMore, []byte{0x01, 0x04})
	wantStep(t, a.Next(pkt(3, []byte{0x02})), AuthReadMore, append([]byte{0x01}, key.PublicKeyPEM()...))
	pub, err := parsePublicKey(key.PublicKeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	enc, err := mysql.EncryptPassword(testToken, testNonce, pub)
	if err != nil {
		t.Fatal(err)
	}
	wantStep(t, a.Next(pkt(5, enc)), AuthCheckPassword)
	if a.Password() != testToken {
		t.Errorf("password %q", a.Password())
	}
}

func TestServerAuthSwitch(t *testing.T) {
	a := newAuth(t, ServerAuthConfig{})
	native := mysql.CalcNativePassword(testNonce, []byte(testToken))
	wantStep(t, a.Next(response(1, PluginNative, native, clientCaps)), AuthReadMore,
		append([]byte("\xfecaching_sha2_password\x00"), append(testNonce, 0)...))
	scramble := mysql.CalcCachingSha2Password(testNonce, []byte(testToken))
	wantStep(t, a.Next(pkt(3, scramble)), AuthCheckScramble)
	wantStep(t, a.ScrambleChecked(true), AuthAccepted, []byte{0x01, 0x03})
}

func TestServerAuthRefusals(t *testing.T) {
	native := mysql.CalcNativePassword(testNonce, []byte(testToken))
	cases := []struct {
		name  string
		cfg   ServerAuthConfig
		steps func(a *ServerAuth) AuthStep
		code  uint16
		msg   string
	}{
		{"client without plugin auth", ServerAuthConfig{}, func(a *ServerAuth) AuthStep {
			return a.Next(response(1, "", native, clientCaps&^(mysql.CLIENT_PLUGIN_AUTH|mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA)))
		}, CodeAccessDenied, "caching_sha2_password"},
		{"native answer to the switch", ServerAuthConfig{}, func(a *ServerAuth) AuthStep {
			a.Next(response(1, PluginNative, native, clientCaps))
			return a.Next(pkt(3, native))
		}, CodeAccessDenied, "--enable-cleartext-plugin over TLS"},
		{"no password", ServerAuthConfig{}, func(a *ServerAuth) AuthStep {
			return a.Next(response(1, PluginCachingSHA2, nil, clientCaps))
		}, CodeAccessDenied, "using password: NO"},
		{"clear password on plain TCP", ServerAuthConfig{}, func(a *ServerAuth) AuthStep {
			return a.Next(response(1, PluginClear, []byte("secret\x00"), clientCaps))
		}, CodeAccessDenied, "only over TLS"},
		{"full authentication without TLS or key", ServerAuthConfig{}, func(a *ServerAuth) AuthStep {
			a.Next(response(1, PluginCachingSHA2, make([]byte, 32), clientCaps))
			a.ScrambleChecked(false)
			return a.Next(pkt(3, []byte{0x02}))
		}, CodeAccessDenied, "needs TLS"},
		{"undecryptable password", ServerAuthConfig{Key: serverKey(t)}, func(a *ServerAuth) AuthStep {
			a.Next(response(1, PluginCachingSHA2, make([]byte, 32), clientCaps))
			a.ScrambleChecked(false)
			return a.Next(pkt(3, make([]byte, 256)))
		}, CodeAccessDenied, "using password: YES"},
		{"SSLRequest without TLS", ServerAuthConfig{}, func(a *ServerAuth) AuthStep {
			return a.Next(pkt(1, AppendHandshakeResponse(nil, &HandshakeResponse{Capabilities: clientCaps | mysql.CLIENT_SSL}, true)))
		}, CodeHandshake, "TLS is not available"},
		{"out of order", ServerAuthConfig{}, func(a *ServerAuth) AuthStep {
			return a.Next(response(4, PluginCachingSHA2, make([]byte, 32), clientCaps))
		}, CodeHandshake, "out of order"},
		{"garbage response", ServerAuthConfig{}, func(a *ServerAuth) AuthStep {
			return a.Next(pkt(1, []byte{1, 2, 3}))
		}, CodeHandshake, "Bad handshake"},
		{"packet while a verdict is pending", ServerAuthConfig{}, func(a *ServerAuth) AuthStep {
			a.Next(response(1, PluginCachingSHA2, make([]byte, 32), clientCaps))
			return a.Next(pkt(2, []byte{0}))
		}, CodeHandshake, "Bad handshake"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantRefused(t, tc.steps(newAuth(t, tc.cfg)), tc.code, tc.msg)
		})
	}
}

func TestServerAuthClearPassword(t *testing.T) {
	cases := []struct {
		name string
		cfg  ServerAuthConfig
	}{
		{"loopback", ServerAuthConfig{Loopback: true}},
		{"unix socket", ServerAuthConfig{Socket: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAuth(t, tc.cfg)
			wantStep(t, a.Next(response(1, PluginClear, []byte(testToken+"\x00"), clientCaps)), AuthCheckPassword)
			if a.Password() != testToken {
				t.Errorf("password %q", a.Password())
			}
		})
	}
	// On a Unix socket, full authentication takes the password in clear.
	a := newAuth(t, ServerAuthConfig{Socket: true})
	a.Next(response(1, PluginCachingSHA2, make([]byte, 32), clientCaps))
	a.ScrambleChecked(false)
	wantStep(t, a.Next(pkt(3, []byte(testToken+"\x00"))), AuthCheckPassword)
}
