package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/cmd/airlock/config"
	"github.com/airlock-gw/airlock/protocols/postgres"
)

var update = flag.Bool("update", false, "rewrite golden files")

func noEnv(string) (string, bool) { return "", false }

// TestBadConfigs checks that every bad file in testdata/configs/bad fails
// with the exact report in its .golden file: every problem, with its path.
func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob("../../testdata/configs/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad configs: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, err = config.Parse(data, noEnv, engines()...)
			if err == nil {
				t.Fatal("accepted")
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			got := err.Error() + "\n"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if got != string(want) {
				t.Fatalf("report differs from %s:\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

func TestQuickstartConfig(t *testing.T) {
	c, err := config.Load("../../airlock.yaml", engines()...)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen["postgres"] != "127.0.0.1:15432" || c.Listen["admin"] != "127.0.0.1:19090" {
		t.Fatalf("quickstart ports changed: %+v", c.Listen)
	}
	if len(c.Connections) == 0 || c.Connections[0].Name != "postgres" || c.Identities[0].Name != "dev" {
		t.Fatal("quickstart must keep the dev identity and the postgres connection")
	}
}

func TestExpand(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "pw")
	_ = os.WriteFile(secret, []byte("s3cr:et #1\n"), 0o600)
	env := map[string]string{"PW": "a: b # not a comment", "EMPTY": "", "PORT": "5432"}
	get := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg := `
listen: {postgres: "127.0.0.1:15432"}
identities: [{name: dev, token_sha256: c91cbbedf8c712e8e2b7517ddeca8fe4fde839ebd8339e0b2001363002b37712}]
connections:
  - name: a
    upstream: {address: "127.0.0.1:${PORT}", database: "${EMPTY:-postgres}", user: u, password: "${PW}"}
    allow: [dev]
  - name: b
    upstream: {address: 127.0.0.1:5432, database: d, user: u, password: "${file:` + secret + `}"}
    allow: [dev]
  - name: c
    upstream: {address: 127.0.0.1:5432, database: d, user: "$${NOT_EXPANDED}", password: x}
    allow: [dev]
`
	c, err := config.Parse([]byte(cfg), get, engines()...)
	if err != nil {
		t.Fatal(err)
	}
	upstream := func(i int) *postgres.Upstream { return c.Connections[i].DecodedUpstream().(*postgres.Upstream) }
	up := upstream(0)
	if up.Password.Reveal() != env["PW"] || up.Address != "127.0.0.1:5432" || up.Database != "postgres" {
		t.Fatalf("expansion: %+v", up)
	}
	if upstream(1).Password.Reveal() != "s3cr:et #1" {
		t.Fatal("file secret not read")
	}
	if upstream(2).User != "${NOT_EXPANDED}" {
		t.Fatalf("escape: %q", upstream(2).User)
	}
	// A missing file is named, its would-be content is not.
	_, err = config.Parse([]byte(strings.Replace(cfg, secret, secret+".missing", 1)), get, engines()...)
	if err == nil || !strings.Contains(err.Error(), "connections[1].upstream.password: read secret file") {
		t.Fatalf("missing file: %v", err)
	}
}
