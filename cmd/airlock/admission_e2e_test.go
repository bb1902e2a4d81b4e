package main

import (
	"context"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols/testenv"
)

// TestSilentFloodKeepsServing: clients that connect and say nothing cannot
// take the gateway down or keep a real client out. Past the cap on
// connections still authenticating, the oldest is dropped to make room, so
// a client that logs in promptly gets in even during the flood.
func TestSilentFloodKeepsServing(t *testing.T) {
	db := testenv.PostgresDB(t)
	in := startAirlock(t, baseConfig(db, "handshake: {max_pending: 16, timeout: 30s}", ""))
	var silent []net.Conn
	defer func() {
		for _, c := range silent {
			c.Close()
		}
	}()
	for range 200 {
		c, err := net.Dial("tcp", in.pgAddr)
		if err != nil {
			t.Fatalf("connection %d refused: %v", len(silent), err)
		}
		silent = append(silent, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := pgxConnect(t, in.url("dev", devToken, "main", ""))
	var v int
	if err := c.QueryRow(ctx, "SELECT 7").Scan(&v); err != nil || v != 7 {
		t.Fatalf("a client during the flood: %v", err)
	}
	// The oldest silent connections were closed by the gateway.
	_ = silent[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent[0].Read(make([]byte, 1)); err == nil || isTimeoutErr(err) {
		t.Fatalf("the oldest silent connection is still open: %v", err)
	}
	if m := in.metrics(t); !regexp.MustCompile(`airlock_handshakes_dropped_total\{protocol="postgres"\} (1[89][0-9]|2[0-9][0-9])`).MatchString(m) {
		t.Errorf("dropped handshakes not counted:\n%s", grepLines(m, "handshakes"))
	}
}

func isTimeoutErr(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

var fingerprintRE = regexp.MustCompile(`msg="TLS with a self-signed certificate" sha256=([0-9a-f]{64}) generated=(true|false)`)

// TestCertificateSurvivesRestart: the generated certificate is kept, so a
// restart shows clients the same one.
func TestCertificateSurvivesRestart(t *testing.T) {
	db := testenv.PostgresDB(t)
	cfg := baseConfig(db, "tls: {dir: "+filepath.Join(t.TempDir(), "tls")+"}", "")
	var prints []string
	for i := range 2 {
		in := startAirlock(t, cfg)
		m := fingerprintRE.FindStringSubmatch(in.Logs())
		if m == nil {
			t.Fatalf("start %d logged no certificate:\n%s", i, in.Logs())
		}
		if want := i == 0; (m[2] == "true") != want {
			t.Errorf("start %d: generated=%s", i, m[2])
		}
		prints = append(prints, m[1])
		in.stop()
	}
	if prints[0] != prints[1] {
		t.Fatalf("the certificate changed across a restart: %s then %s", prints[0], prints[1])
	}
}
