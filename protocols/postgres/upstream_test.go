package postgres

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/testenv"
)

// privateCluster starts a throwaway PostgreSQL cluster whose pg_hba demands
// passwords (the machine's own cluster trusts loopback), so Airlock's held
// credentials are really checked with SCRAM-SHA-256 and md5.
func privateCluster(t *testing.T, settings ...string) (addr string) {
	t.Helper()
	bindir := ""
	if dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(dirs) > 0 {
		bindir = filepath.Dir(dirs[len(dirs)-1])
	}
	runuser, _ := exec.LookPath("runuser")
	if bindir == "" || runuser == "" {
		if testenv.InCI() {
			t.Fatal("initdb or runuser missing: cannot start a private PostgreSQL cluster")
		}
		t.Skip("initdb or runuser missing")
	}
	dir, err := os.MkdirTemp("", "airlock-pg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data := filepath.Join(dir, "data")
	as := func(args ...string) *exec.Cmd {
		cmd := exec.Command(runuser, append([]string{"-u", "postgres", "--"}, args...)...)
		return cmd
	}
	if os.Geteuid() != 0 {
		as = func(args ...string) *exec.Cmd { return exec.Command(args[0], args[1:]...) }
	}
	_ = os.Chmod(dir, 0o777)
	if out, err := as(filepath.Join(bindir, "initdb"), "-D", data, "-U", "postgres", "--auth=trust").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	hba := "local all all trust\n" +
		"host all scram_user 127.0.0.1/32 scram-sha-256\n" +
		"host all md5_user 127.0.0.1/32 md5\n" +
		"host all postgres 127.0.0.1/32 trust\n"
	if err := os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte(hba), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", port, dir)
	for _, s := range settings {
		opts += " -c " + s
	}
	if out, err := as(filepath.Join(bindir, "pg_ctl"), "-D", data, "-o", opts, "-w", "-l", filepath.Join(dir, "log"), "start").CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl start: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = as(filepath.Join(bindir, "pg_ctl"), "-D", data, "-m", "immediate", "stop").Run() })
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, "postgres://postgres@"+addr+"/postgres?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, q := range []string{
		"SET password_encryption = 'scram-sha-256'",
		"CREATE ROLE scram_user LOGIN PASSWORD 'scram-Secret-1'",
		"SET password_encryption = 'md5'",
		"CREATE ROLE md5_user LOGIN PASSWORD 'md5-Secret-2'",
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return addr
}

func TestUpstreamPasswordMethods(t *testing.T) {
	addr := privateCluster(t)
	h := startHarness(t, func(o *Options) {
		up := func(user, pw string) *Upstream {
			return &Upstream{Address: addr, Database: "postgres", User: user, Password: protocols.Secret(pw),
				TLS: UpstreamTLS{Mode: "disable"}}
		}
		for name, u := range map[string]*Upstream{
			"scram":     up("scram_user", "scram-Secret-1"),
			"md5":       up("md5_user", "md5-Secret-2"),
			"badsecret": up("scram_user", "wrong-Secret-3"),
		} {
			o.Connections[name] = &protocols.Connection{Name: name, Protocol: protocols.Postgres, Allow: protocols.Principals{"alice"}, Upstream: u}
		}
	})
	ctx := context.Background()
	for conn, user := range map[string]string{"scram": "scram_user", "md5": "md5_user"} {
		t.Run(conn, func(t *testing.T) {
			c := connect(t, h.url("alice", "alice-token", conn, ""))
			var got string
			if err := c.QueryRow(ctx, "SELECT current_user").Scan(&got); err != nil || got != user {
				t.Fatalf("current_user %q, %v", got, err)
			}
		})
	}
	t.Run("wrong held password", func(t *testing.T) {
		_, err := pgx.Connect(ctx, h.url("alice", "alice-token", "badsecret", ""))
		if pgCode(err) != "08004" || !strings.Contains(err.Error(), `"badsecret" refused Airlock's login`) {
			t.Fatalf("want 08004 naming the connection, got %v", err)
		}
		if strings.Contains(err.Error(), "wrong-Secret-3") {
			t.Fatal("the held password reached the client")
		}
	})
}

func TestUpstreamTLSModes(t *testing.T) {
	const snakeoil = "/etc/ssl/certs/ssl-cert-snakeoil.pem"
	pemData, err := os.ReadFile(snakeoil)
	if err != nil {
		t.Skipf("no snakeoil certificate: %v", err)
	}
	blk, _ := pem.Decode(pemData)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	name := cert.Subject.CommonName
	if len(cert.DNSNames) > 0 {
		name = cert.DNSNames[0]
	}
	h := startHarness(t)
	var sslOn string
	probe := connect(t, testenv.PostgresURL(t, "postgres"))
	if err := probe.QueryRow(context.Background(), "SHOW ssl").Scan(&sslOn); err != nil || sslOn != "on" {
		t.Skipf("local PostgreSQL has ssl=%s", sslOn)
	}
	for _, tc := range []struct {
		mode, ca, server string
		ok               bool
	}{
		{"require", "", "", true},
		{"verify-full", snakeoil, name, true},
		{"verify-full", snakeoil, "not-" + name, false},
	} {
		t.Run(tc.mode+"/"+tc.server, func(t *testing.T) {
			main := *h.conns["main"]
			up := *upstreamOf(&main)
			main.Name = "tls"
			up.TLS = UpstreamTLS{Mode: tc.mode, CAFile: tc.ca, ServerName: tc.server}
			main.Upstream = &up
			h.conns["tls"] = &main
			c, err := pgx.Connect(context.Background(), h.url("alice", "alice-token", "tls", ""))
			if !tc.ok {
				if pgCode(err) != "08006" {
					t.Fatalf("want 08006, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			var used bool
			if err := c.QueryRow(context.Background(), "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&used); err != nil || !used {
				t.Fatalf("upstream session is not TLS: %v %v", used, err)
			}
		})
	}
}
