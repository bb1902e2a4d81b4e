package main

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/airlock-gw/airlock/cmd/airlock/config"
	"github.com/airlock-gw/airlock/protocols/postgres"
)

// TestDockerCompose checks the demo's compose file where Docker cannot run:
// its shape, and that the Airlock configuration it embeds is valid.
func TestDockerCompose(t *testing.T) {
	data, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]struct {
			Build *struct {
				Context          string `yaml:"context"`
				DockerfileInline string `yaml:"dockerfile_inline"`
			} `yaml:"build"`
			Image   string            `yaml:"image"`
			Ports   []string          `yaml:"ports"`
			Env     map[string]string `yaml:"environment"`
			Configs []struct {
				Source string `yaml:"source"`
				Target string `yaml:"target"`
			} `yaml:"configs"`
		} `yaml:"services"`
		Configs map[string]struct {
			Content string `yaml:"content"`
		} `yaml:"configs"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("docker-compose.yml does not parse: %v", err)
	}
	for _, name := range []string{"airlock", "postgres", "mariadb", "prometheus"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("service %s missing", name)
		}
	}
	a := c.Services["airlock"]
	if a.Build == nil || a.Build.Context != "." || !strings.Contains(a.Build.DockerfileInline, "./cmd/airlock") {
		t.Fatal("airlock must be built from the repository")
	}
	for _, p := range []string{"15432:15432", "13306:13306", "18080:18080", "19090:19090"} {
		found := false
		for _, q := range a.Ports {
			found = found || strings.HasSuffix(q, p)
		}
		if !found {
			t.Errorf("airlock does not publish %s", p)
		}
	}
	for _, ref := range a.Configs {
		if _, ok := c.Configs[ref.Source]; !ok {
			t.Errorf("airlock refers to undefined config %s", ref.Source)
		}
	}
	if !strings.Contains(c.Configs["prometheus_config"].Content, "airlock:19090") {
		t.Error("prometheus does not scrape airlock's admin listener")
	}
	// Compose turns $$ into $; then the embedded config must validate with
	// the environment the service sets.
	embedded := strings.ReplaceAll(c.Configs["airlock_config"].Content, "$$", "$")
	env := func(k string) (string, bool) { v, ok := a.Env[k]; return v, ok }
	cfg, err := config.Parse([]byte(embedded), env, engines()...)
	if err != nil {
		t.Fatalf("embedded airlock.yaml is invalid: %v", err)
	}
	if up := cfg.Connections[0].DecodedUpstream().(*postgres.Upstream); up.Address != "postgres:5432" {
		t.Errorf("airlock should reach the postgres service, got %s", up.Address)
	}
}
