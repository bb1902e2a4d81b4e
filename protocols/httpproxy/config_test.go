package httpproxy

import (
	"context"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
)

func idOf(name string) protocols.Identity { return protocols.Identity{Name: name} }

// decodeYAML is an engine.Decode over a YAML text.
func decodeYAML(src string) func(v any) error {
	return func(v any) error {
		dec := yaml.NewDecoder(strings.NewReader(src))
		dec.KnownFields(true)
		return dec.Decode(v)
	}
}

func TestUpstreamConfig(t *testing.T) {
	e := New()
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"minimal", "url: https://api.example.com\ncredential: {bearer: abcdefgh}", nil},
		{"graphql preset", "url: https://api.example.com/graphql\npreset: graphql", nil},
		{"no url", "preset: openai", []string{"url: missing"}},
		{"bad scheme", "url: ftp://x", []string{"the scheme must be http or https"}},
		{"user in url", "url: https://u:p@x", []string{"holds a user or password"}},
		{"query in url", "url: https://x/?key=1", []string{"takes no query"}},
		{"two credentials", "url: https://x\ncredential: {bearer: abcdefgh, basic: {username: u, password: p}}", []string{"set one of"}},
		{"bad header", "url: https://x\ncredential: {header: {name: 'X Bad', value: v}}", []string{"credential.header.name"}},
		{"oauth2", "url: https://x\ncredential: {oauth2: {token_url: x, client_id: ''}}", []string{"oauth2.token_url", "oauth2.client_id", "oauth2.client_secret"}},
		{"unexpanded", "url: https://x\ncredential: {bearer: '${KEY}'}", []string{"unexpanded"}},
		{"enums", "url: https://x\nreview: later\non_secret: drop\nbinary: maybe\ntool_sql: oracle\ntls: {mode: prefer}\npreset: soap",
			[]string{"review: unknown", "on_secret: unknown", "binary: unknown", "tool_sql: unknown", "tls.mode: unknown", "preset: unknown"}},
		{"tls on http", "url: http://x\ntls: {server_name: y}", []string{"carries no TLS"}},
		{"descriptors outside grpc", "url: http://x\ndescriptors: /nonexistent", []string{"only for gRPC"}},
		{"route", "url: http://x\nroutes: [{path: admin, rule: http.admin}]", []string{"routes[0].path"}},
		{"body", "url: http://x\nbody: {inspect: 2MiB, max: 1MiB}", []string{"body.max"}},
		{"unknown field", "url: http://x\nkey: y", []string{"not found"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Upstream(decodeYAML(tc.yaml))
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v lacks %q", err, w)
				}
			}
		})
	}
}

func TestSettings(t *testing.T) {
	e := New()
	if err := e.Configure(decodeYAML("domain: gw.example.com\nsession_idle: 30s")); err != nil {
		t.Fatal(err)
	}
	if e.settings.Domain != "gw.example.com" || e.settings.SessionRequests != 1000 || e.settings.SessionMaxIdlePerCaller != 32 {
		t.Errorf("settings: %+v", e.settings)
	}
	if e.settings.Mode != "inspect" {
		t.Errorf("default mode %q", e.settings.Mode)
	}
	if err := e.Configure(decodeYAML("mode: decode")); err != nil || e.settings.Mode != "decode" {
		t.Errorf("mode decode: %q, %v", e.settings.Mode, err)
	}
	for _, bad := range []string{"mode: relay", "mode: fast"} {
		if err := e.Configure(decodeYAML(bad)); err == nil || !strings.Contains(err.Error(), "mode:") {
			t.Errorf("%s: %v", bad, err)
		}
	}
	if err := e.Configure(decodeYAML("session_max_idle_per_caller: 8")); err != nil || e.settings.SessionMaxIdlePerCaller != 8 {
		t.Errorf("session_max_idle_per_caller: %d, %v", e.settings.SessionMaxIdlePerCaller, err)
	}
	for _, bad := range []string{"session_max_idle_per_caller: -1", "session_max_idle_per_caller: 100000"} {
		if err := e.Configure(decodeYAML(bad)); err == nil || !strings.Contains(err.Error(), "session_max_idle_per_caller: must be between 1 and 4096") {
			t.Errorf("%s: %v", bad, err)
		}
	}
	if err := e.Configure(decodeYAML("domain: 'http://x'")); err == nil {
		t.Error("a URL was accepted as a domain")
	}
	if err := e.Serve(context.Background(), nil, engine.Deps{}); err == nil {
		t.Error("Serve ran")
	}
}

func TestCredentialSecrets(t *testing.T) {
	c := newCredential(Credential{Basic: &BasicCredential{Username: "svc", Password: "pa55word-long"}}, nil)
	got := strings.Join(c.secrets(), " ")
	if !strings.Contains(got, "pa55word-long") || !strings.Contains(got, "c3ZjOnBhNTV3b3JkLWxvbmc=") {
		t.Errorf("basic secrets: %q", got)
	}
	c = newCredential(Credential{Bearer: "abc"}, nil)
	if len(c.secrets()) != 0 {
		t.Error("a value too short to scrub is scrubbed")
	}
}
