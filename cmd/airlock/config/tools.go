package config

import (
	"fmt"
	"os"
	"sort"

	"github.com/airlock-gw/airlock/protocols/engine"
)

// LoadForTools is Load for the commands that read a configuration without
// serving it (check-config, sessions, replay, verify, classify): secrets
// they do not need may be absent where they run. A variable that is not set
// reads as empty, and the recording key's variable may be unset; notes say
// what could therefore not be checked. Everything else is checked as Load
// checks it.
func LoadForTools(path string, engines ...engine.Engine) (*Config, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read config: %w", err)
	}
	return ParseForTools(data, os.LookupEnv, engines...)
}

// ParseForTools is LoadForTools on bytes with an injected environment.
func ParseForTools(data []byte, getenv func(string) (string, bool), engines ...engine.Engine) (*Config, []string, error) {
	unset := map[string]bool{}
	lenient := func(name string) (string, bool) {
		if v, ok := getenv(name); ok {
			return v, true
		}
		unset[name] = true
		return "", true
	}
	c, err := parse(data, lenient, parseOptions{keyOptional: true}, engines...)
	if err != nil {
		return nil, nil, err
	}
	names := make([]string, 0, len(unset))
	for n := range unset {
		names = append(names, n)
	}
	sort.Strings(names)
	var notes []string
	for _, n := range names {
		if n == c.Recording.HMACKeyEnv {
			continue
		}
		notes = append(notes, fmt.Sprintf("environment variable %s is not set here: the values that use it were read as empty and not checked", n))
	}
	if k := c.Recording.HMACKeyEnv; k != "" {
		if _, ok := getenv(k); !ok {
			notes = append(notes, fmt.Sprintf("recording.hmac_key_env: %s is not set here: the key was not checked, and recordings' signatures cannot be verified without it", k))
		}
	}
	return c, notes, nil
}

// parseOptions relax Parse for LoadForTools.
type parseOptions struct {
	// keyOptional lets the recording key's variable be unset.
	keyOptional bool
}

// recordingToCheck is the recording block as validate checks it: without
// its key's variable when that may be unset and is.
func (c *Config) recordingToCheck() interface{ Validate(string) error } {
	r := c.Recording
	if c.keyOptional && r.HMACKeyEnv != "" {
		if _, ok := os.LookupEnv(r.HMACKeyEnv); !ok {
			r.HMACKeyEnv = ""
		}
	}
	return &r
}
