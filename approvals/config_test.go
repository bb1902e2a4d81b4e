package approvals

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session/sqldb"
)

var update = flag.Bool("update", false, "rewrite golden files")

// exampleYAML is the documented configuration shape.
const exampleYAML = `
approvals:
  mode: hold
  timeout: 5m
  validity: 15m
  reviewers: [dev, "group:dba"]
  required: 1
  self_approval: true
  admin_url: https://airlock.example.com:19090
  replica: airlock-1
  retention: 720h
  overrides:
    - principals: ["group:agents"]
      mode: retry
  webhooks:
    - url: https://hooks.slack.com/services/T000/B000/XXXX
      format: slack
    - url: https://hooks.example.com/airlock
      secret: change-me
store:
  driver: sqlite
  dsn: ./data/airlock.db
connection:
  approvals:
    reviewers: ["group:dba"]
    required: 2
    timeout: 10m
    overrides:
      - principals: [ci-bot]
        mode: retry
        validity: 5m
`

type exampleFile struct {
	Approvals  Config       `yaml:"approvals"`
	Store      sqldb.Config `yaml:"store"`
	Connection struct {
		Approvals ConnectionConfig `yaml:"approvals"`
	} `yaml:"connection"`
}

func decodeStrict(t *testing.T, src string, v any) error {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	return dec.Decode(v)
}

func TestConfigExample(t *testing.T) {
	var f exampleFile
	if err := decodeStrict(t, exampleYAML, &f); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(f.Approvals.Validate("approvals"), f.Store.Validate("store"),
		f.Connection.Approvals.Validate("connections[0].approvals")); err != nil {
		t.Fatal(err)
	}
	if f.Approvals.Timeout != 5*time.Minute || f.Approvals.Webhooks[0].Format != FormatSlack || f.Store.DSN.Reveal() != "./data/airlock.db" {
		t.Fatalf("%+v", f)
	}
	conns := map[string]ConnectionConfig{"prod": f.Connection.Approvals}
	ci := protocols.Identity{Name: "ci-bot"}
	agent := protocols.Identity{Name: "gpt", Groups: []string{"agents"}}
	for _, tc := range []struct {
		name string
		conn string
		id   protocols.Identity
		want settings
	}{
		{"global", "dev", alice, settings{ModeHold, 5 * time.Minute, 15 * time.Minute, protocols.Principals{"dev", "group:dba"}, 1, true}},
		{"global agent", "dev", agent, settings{ModeRetry, 5 * time.Minute, 15 * time.Minute, protocols.Principals{"dev", "group:dba"}, 1, true}},
		{"connection", "prod", alice, settings{ModeHold, 10 * time.Minute, 15 * time.Minute, protocols.Principals{"group:dba"}, 2, true}},
		{"connection override", "prod", ci, settings{ModeRetry, 10 * time.Minute, 5 * time.Minute, protocols.Principals{"group:dba"}, 2, true}},
		{"global override applies on the connection", "prod", agent, settings{ModeRetry, 10 * time.Minute, 15 * time.Minute, protocols.Principals{"group:dba"}, 2, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := resolve(&f.Approvals, conns, tc.conn, &tc.id)
			if got.Mode != tc.want.Mode || got.Timeout != tc.want.Timeout || got.Validity != tc.want.Validity ||
				strings.Join(got.Reviewers, ",") != strings.Join(tc.want.Reviewers, ",") || got.Required != tc.want.Required ||
				got.SelfApproval != tc.want.SelfApproval {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	if d := resolve(&Config{}, nil, "x", &alice); d.Mode != ModeHold || d.Timeout != DefaultTimeout || d.Validity != DefaultValidity ||
		d.Required != 1 || d.SelfApproval || len(d.Reviewers) != 0 {
		t.Fatalf("defaults %+v", d)
	}
}

func TestConfigErrorsGolden(t *testing.T) {
	const bad = `
approvals:
  mode: wait
  timeout: 10ms
  validity: 48h
  reviewers: ["", "group:", " bob"]
  required: 99
  admin_url: ftp://x
  replica: "a\x01b"
  retention: -1h
  overrides:
    - principals: []
    - principals: [x]
      mode: sometimes
  webhooks:
    - url: not a url with secret-in-it
      format: teams
    - format: json
store:
  driver: mysql
connection:
  approvals:
    mode: later
    required: -1
    overrides:
      - principals: ["group:"]
        timeout: 25h
`
	var f exampleFile
	if err := decodeStrict(t, bad, &f); err != nil {
		t.Fatal(err)
	}
	err := errors.Join(f.Approvals.Validate("approvals"), f.Store.Validate("store"),
		f.Connection.Approvals.Validate("connections[3].approvals"),
		(&sqldb.Config{Driver: "postgres"}).Validate("store"),
		(&sqldb.Config{Driver: "postgres", DSN: "postgres://u:hunter2@[::1"}).Validate("store"))
	if err == nil {
		t.Fatal("bad config accepted")
	}
	got := err.Error() + "\n"
	if strings.Contains(got, "secret-in-it") || strings.Contains(got, "hunter2") {
		t.Fatalf("a validation error quotes a secret:\n%s", got)
	}
	golden := filepath.Join("testdata", "config_errors.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestConfigErrorsGolden -update)", err)
	}
	if got != string(want) {
		t.Fatalf("errors changed (run with -update if intended):\n got:\n%s\nwant:\n%s", got, want)
	}
}

func TestConfigStrictDecoding(t *testing.T) {
	var f exampleFile
	if err := decodeStrict(t, "approvals:\n  mode: hold\n  reviewer: [bob]\n", &f); err == nil {
		t.Fatal("unknown field accepted")
	}
	if err := decodeStrict(t, "approvals:\n  timeout: 300\n", &f); err == nil {
		t.Fatal("a bare number accepted as a duration")
	}
}
