package redis

import (
	"fmt"
	"slices"
	"strings"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
)

var _ engine.ConfigDescriber = (*Engine)(nil)

// Key describes the keys that match a pattern, for agents: a Redis
// database has no catalog to read, and scanning the keyspace would cost
// the server and show key names nobody chose to show. An administrator
// writes them in the connection's upstream block:
//
//	keys:
//	  - {pattern: "user:*", type: hash, description: "A customer", fields: [email, name]}
type Key struct {
	// Pattern is a glob as SCAN MATCH reads it.
	Pattern     string   `yaml:"pattern"`
	Type        string   `yaml:"type"`
	Description string   `yaml:"description"`
	Fields      []string `yaml:"fields"`
}

// keyTypes are the types TYPE answers (json for RedisJSON's values).
var keyTypes = []string{"string", "hash", "list", "set", "zset", "stream", "json"}

// validateKeys reports every problem of a keys: list, with its path.
func validateKeys(keys []Key) []error {
	var errs []error
	seen := map[string]int{}
	for i, k := range keys {
		at := fmt.Sprintf("keys[%d]", i)
		switch {
		case k.Pattern == "":
			errs = append(errs, fmt.Errorf("%s.pattern: missing (a glob such as \"user:*\")", at))
		case strings.ContainsAny(k.Pattern, " \t\r\n"):
			errs = append(errs, fmt.Errorf("%s.pattern: %q has white space (Redis keys in patterns are matched byte for byte)", at, k.Pattern))
		default:
			if j, dup := seen[k.Pattern]; dup {
				errs = append(errs, fmt.Errorf("%s.pattern: %q is also keys[%d]'s", at, k.Pattern, j))
			}
			seen[k.Pattern] = i
		}
		if !slices.Contains(keyTypes, k.Type) {
			errs = append(errs, fmt.Errorf("%s.type: %q is not a Redis type (want one of %s)", at, k.Type, strings.Join(keyTypes, ", ")))
		}
		if len(k.Fields) > 0 && k.Type != "hash" && k.Type != "stream" && k.Type != "json" {
			errs = append(errs, fmt.Errorf("%s.fields: a %s has no fields (fields describe a hash, a stream's entries or a JSON document)", at, k.Type))
		}
		for j, f := range k.Fields {
			if f == "" {
				errs = append(errs, fmt.Errorf("%s.fields[%d]: empty", at, j))
			}
		}
	}
	return errs
}

// DescribeConfigured implements engine.ConfigDescriber: the connection's
// keys, as configured.
func (e *Engine) DescribeConfigured(conn *protocols.Connection) *engine.Schema {
	s := &engine.Schema{Tables: []engine.Table{}}
	for _, k := range upstreamOf(conn).Keys {
		s.Keys = append(s.Keys, engine.Key{Pattern: k.Pattern, Type: k.Type, Description: k.Description, Fields: slices.Clone(k.Fields)})
	}
	return s
}
