package login

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session/identity/sso"
)

func testPaths(t *testing.T) Paths {
	t.Helper()
	home := t.TempDir()
	p, err := DefaultPaths(func(k string) string {
		if k == "HOME" {
			return home
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var result = &sso.LoginResult{
	Credential: "airlock_sso_secret:with\\odd", CredentialID: "cred-1",
	Identity: protocols.Identity{Name: "alice@corp"}, Provider: "okta", ExpiresAt: time.Now().Add(time.Hour),
	Connections: []sso.ClientConnection{
		{Name: "main", Protocol: "postgres", Host: "db.corp", Port: 15432},
		{Name: "shop", Protocol: "mysql", Host: "db.corp", Port: 13306},
		{Name: "cache", Protocol: "redis", Host: "db.corp", Port: 16379},
	},
	MCPURL: "http://db.corp:18080/mcp",
}

// TestWriteKeepsOtherEntries: login puts its block first in shared files,
// replaces only its own block on the next login, and logout takes only its
// block out; every file it writes is 0600.
func TestWriteKeepsOtherEntries(t *testing.T) {
	p := testPaths(t)
	const theirs = "# mine\nprod.corp:5432:*:me:hunter2\n"
	const theirService = "[prod]\nhost=prod.corp\n"
	const theirCnf = "[client]\nuser=me\n"
	for path, body := range map[string]string{p.PGPass: theirs, p.PGService: theirService, p.MyCnf: theirCnf} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const server = "https://airlock.corp:19090"
	for range 2 { // a second login replaces the block
		if _, err := Write(p, server, result); err != nil {
			t.Fatal(err)
		}
	}
	pgpass := read(t, p.PGPass)
	want := beginMarker(server) + "\ndb.corp:15432:main:alice@corp:airlock_sso_secret\\:with\\\\odd\n" + endMarker(server) + "\n" + theirs
	if pgpass != want {
		t.Fatalf("pgpass:\n%s\nwant:\n%s", pgpass, want)
	}
	service := read(t, p.PGService)
	if !strings.HasPrefix(service, beginMarker(server)+"\n[airlock-main]\nhost=db.corp\nport=15432\ndbname=main\nuser=alice@corp\n") ||
		!strings.HasSuffix(service, theirService) || strings.Contains(service, "airlock_sso_") || strings.Count(service, "[airlock-main]") != 1 {
		t.Fatalf("pg_service.conf:\n%s", service)
	}
	cnf := read(t, p.MyCnf)
	if !strings.HasPrefix(cnf, theirCnf) || !strings.Contains(cnf, "[client_airlock_shop]\nhost=db.corp\nport=13306\nuser=alice@corp\npassword=airlock_sso_") {
		t.Fatalf("my.cnf:\n%s", cnf)
	}
	env := read(t, filepath.Join(p.Dir, "env"))
	if !strings.Contains(env, "export REDISCLI_AUTH=airlock_sso_") {
		t.Fatalf("env:\n%s", env)
	}
	mcp := read(t, filepath.Join(p.Dir, "mcp.json"))
	if !strings.Contains(mcp, `"url": "http://db.corp:18080/mcp"`) || !strings.Contains(mcp, `"Authorization": "Bearer airlock_sso_`) {
		t.Fatalf("mcp.json:\n%s", mcp)
	}
	for _, f := range []string{p.PGPass, p.PGService, p.MyCnf, filepath.Join(p.Dir, "env"), filepath.Join(p.Dir, "mcp.json")} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v", f, fi.Mode().Perm(), err)
		}
	}
	// Another server's login keeps this one's block.
	other := *result
	other.Connections = result.Connections[:1]
	if _, err := Write(p, "https://other:19090", &other); err != nil {
		t.Fatal(err)
	}
	if _, err := Remove(p, server); err != nil {
		t.Fatal(err)
	}
	if got := read(t, p.PGPass); strings.Contains(got, beginMarker(server)) || !strings.Contains(got, beginMarker("https://other:19090")) || !strings.HasSuffix(got, theirs) {
		t.Fatalf("pgpass after logout:\n%s", got)
	}
	if got := read(t, p.MyCnf); got != theirCnf {
		t.Fatalf("my.cnf after logout:\n%q", got)
	}
	if _, err := os.Stat(filepath.Join(p.Dir, "env")); !os.IsNotExist(err) {
		t.Fatal("env file left")
	}
}

// TestWriteCreatesPrivateFilesAndFollowsLinks: new files are 0600, and a
// linked dotfile stays a link.
func TestWriteCreatesPrivateFilesAndFollowsLinks(t *testing.T) {
	p := testPaths(t)
	target := filepath.Join(t.TempDir(), "dotfiles-pgpass")
	if err := os.WriteFile(target, []byte("x:1:y:z:w\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p.PGPass); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(p, "http://127.0.0.1:19090", result); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(p.PGPass); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatal("the link was replaced by a file")
	}
	if got := read(t, target); !strings.HasSuffix(got, "x:1:y:z:w\n") || !strings.Contains(got, "alice@corp") {
		t.Fatalf("linked file:\n%s", got)
	}
	if fi, err := os.Stat(p.PGService); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("new pg_service.conf: %v %v", fi.Mode().Perm(), err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
