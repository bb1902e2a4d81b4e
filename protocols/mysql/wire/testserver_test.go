package wire

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// testServer is a MySQL server made of this package's pieces: it
// authenticates callers with ServerAuth and answers COM_PING, and any
// COM_QUERY with one row naming the caller, how they proved it and the auth
// plugin their client started with.
type testServer struct {
	addr   string
	tls    *tls.Config
	key    *ServerKey
	tokens map[string][32]byte // identity -> SHA-256 of its static token
	// jwt stands in for the gateway's OIDC check of a clear password.
	jwt func(user, password string) bool

	mu      sync.Mutex
	methods []string // how each accepted caller proved itself
}

func startTestServer(t *testing.T, s *testServer) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
				s.serve(conn)
			})
		}
	})
	return s
}

func (s *testServer) serve(conn net.Conn) {
	conn, a, method, err := s.authenticate(conn)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.methods = append(s.methods, method)
	s.mu.Unlock()
	caps := a.Capabilities()
	r := NewPacketReader(bufio.NewReader(conn), 1<<20)
	for {
		p, err := r.Next()
		if err != nil {
			return
		}
		cmd, err := DecodeCommand(p.Payload, caps, nil)
		var out []byte
		switch {
		case err != nil:
			out, _ = AppendPacket(nil, 1, AppendERR(nil, NewError(CodeHandshake, err.Error())))
		case cmd.Code() == mysql.COM_QUIT:
			return
		case cmd.Code() == mysql.COM_PING:
			out, _ = AppendPacket(nil, 1, AppendOK(nil, &OK{Status: mysql.SERVER_STATUS_AUTOCOMMIT}, caps))
		case cmd.Code() == mysql.COM_QUERY:
			out = oneRowResult(caps, "who", a.Response().User+" "+method+" "+a.Response().AuthPlugin)
		default:
			out, _ = AppendPacket(nil, 1, AppendERR(nil, NewError(CodeNotSupported, "not supported")))
		}
		if _, err := conn.Write(out); err != nil {
			return
		}
	}
}

// authenticate drives ServerAuth over conn the way the engine will.
func (s *testServer) authenticate(conn net.Conn) (net.Conn, *ServerAuth, string, error) {
	a, greeting, err := NewServerAuth(ServerAuthConfig{
		ServerVersion: "8.0.36-airlock", ConnectionID: 7, Charset: 45,
		Capabilities: ClientCapabilities(RelayCapabilities, s.tls != nil),
		Status:       mysql.SERVER_STATUS_AUTOCOMMIT, Key: s.key,
	})
	if err != nil {
		return conn, nil, "", err
	}
	out := greeting
	for {
		if _, err := conn.Write(out); err != nil {
			return conn, nil, "", err
		}
		p, err := ReadPacket(conn, 1<<20)
		if err != nil {
			return conn, nil, "", err
		}
		step := a.Next(p)
		if step.Action == AuthCheckScramble {
			stored, ok := s.tokens[a.Response().User]
			step = a.ScrambleChecked(ok && VerifyCachingSHA2(stored, a.Nonce(), a.Scramble()))
		}
		out = step.Output
		switch step.Action {
		case AuthStartTLS:
			tc := tls.Server(conn, s.tls)
			if err := tc.Handshake(); err != nil {
				return conn, nil, "", err
			}
			conn = tc
		case AuthAccepted:
			_, err := conn.Write(append(out, a.Accept(mysql.SERVER_STATUS_AUTOCOMMIT)...))
			return conn, a, "scramble", err
		case AuthCheckPassword:
			return s.checkPassword(conn, a)
		case AuthRefused:
			_, _ = conn.Write(out)
			return conn, nil, "", step.Err
		}
	}
}

func (s *testServer) checkPassword(conn net.Conn, a *ServerAuth) (net.Conn, *ServerAuth, string, error) {
	user, pw := a.Response().User, a.Password()
	stored, hasToken := s.tokens[user]
	sum := sha256.Sum256([]byte(pw))
	method := ""
	switch {
	case hasToken && subtle.ConstantTimeCompare(sum[:], stored[:]) == 1:
		method = "token"
	case s.jwt != nil && s.jwt(user, pw):
		method = "jwt"
	default:
		_, _ = conn.Write(a.Deny(NewError(CodeAccessDenied, "Access denied for user '"+user+"' (using password: YES)")))
		return conn, nil, "", errors.New("bad password")
	}
	_, err := conn.Write(a.Accept(mysql.SERVER_STATUS_AUTOCOMMIT))
	return conn, a, method, err
}

// oneRowResult frames a text result set of one VARCHAR column and one row.
func oneRowResult(caps uint32, name, value string) []byte {
	col := &Column{Catalog: []byte("def"), Schema: []byte{}, Table: []byte{}, OrgTable: []byte{}, Name: []byte(name),
		OrgName: []byte{}, Charset: 45, Length: 1024, Type: mysql.MYSQL_TYPE_VAR_STRING}
	out, seq := AppendPacket(nil, 1, appendLenenc(nil, 1))
	out, seq = AppendPacket(out, seq, AppendColumn(nil, col))
	if caps&mysql.CLIENT_DEPRECATE_EOF == 0 {
		out, seq = AppendPacket(out, seq, AppendEOF(nil, EOF{Status: mysql.SERVER_STATUS_AUTOCOMMIT}))
	}
	out, seq = AppendPacket(out, seq, AppendTextRow(nil, [][]byte{[]byte(value)}))
	if caps&mysql.CLIENT_DEPRECATE_EOF != 0 {
		out, _ = AppendPacket(out, seq, AppendOK(nil, &OK{Header: mysql.EOF_HEADER, Status: mysql.SERVER_STATUS_AUTOCOMMIT}, caps))
	} else {
		out, _ = AppendPacket(out, seq, AppendEOF(nil, EOF{Status: mysql.SERVER_STATUS_AUTOCOMMIT}))
	}
	return out
}

// selfSigned returns a server TLS config for 127.0.0.1 and localhost, and
// the path of its certificate in PEM, which is its own CA.
func selfSigned(t *testing.T) (*tls.Config, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, path
}
