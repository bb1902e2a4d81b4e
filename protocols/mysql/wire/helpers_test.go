package wire

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

func asMyError(err error, target **mysql.MyError) bool { return errors.As(err, target) }

// packets splits framed output into packets.
func packets(t *testing.T, out []byte) []Packet {
	t.Helper()
	var ps []Packet
	r := bytes.NewReader(out)
	for r.Len() > 0 {
		p, err := ReadPacket(r, 0)
		if err != nil {
			t.Fatalf("framed output: %v", err)
		}
		ps = append(ps, p)
	}
	return ps
}

// onePacket returns the single packet in out.
func onePacket(t *testing.T, out []byte) Packet {
	t.Helper()
	ps := packets(t, out)
	if len(ps) != 1 {
		t.Fatalf("%d packets in output, want 1", len(ps))
	}
	return ps[0]
}

var (
	testKeyOnce sync.Once
	testKey     *ServerKey
	testKeyErr  error
)

// serverKey returns one RSA key for all tests: generating one is slow.
func serverKey(t testing.TB) *ServerKey {
	t.Helper()
	testKeyOnce.Do(func() { testKey, testKeyErr = GenerateServerKey() })
	if testKeyErr != nil {
		t.Fatal(testKeyErr)
	}
	return testKey
}

func tokenHash(token string) [32]byte { return sha256.Sum256([]byte(token)) }
