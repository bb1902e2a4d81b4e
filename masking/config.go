package masking

import (
	"errors"
	"fmt"
	"strings"

	"github.com/airlock-gw/airlock/protocols"
)

// Config is one connection's masking block.
type Config struct {
	// HashKey is the HMAC-SHA256 key of the hash strategy, at least 16
	// bytes. The same key yields the same hashes on every connection and
	// replica, so joins and equality on hashed values keep working. The
	// config loader expands ${ENV} references before validation.
	HashKey protocols.Secret `yaml:"hash_key"`
	// Detect turns entity detectors on for every text value. A rule naming
	// one entity overrides a rule naming a group that contains it.
	Detect []DetectRule `yaml:"detect"`
	// Columns mask whole columns by name or by table; the first matching
	// rule wins and detection is not run on that column.
	Columns []ColumnRule `yaml:"columns"`
	// JSONPaths mask the values JSON paths select in JSON documents
	// masked whole (HTTP bodies), before the detectors run.
	JSONPaths []JSONPathRule `yaml:"json_paths"`
	// Exempt callers see clear text: identity names and "group:NAME".
	Exempt protocols.Principals `yaml:"exempt"`
}

// DetectRule maps an entity (or a group: pii, secrets, all) to a strategy.
type DetectRule struct {
	Entity   string   `yaml:"entity"`
	Strategy Strategy `yaml:"strategy"`
	// Keep is the number of trailing characters partial leaves in clear
	// (default 4); never more than half of the value's characters.
	Keep *int `yaml:"keep,omitempty"`
}

// ColumnRule masks a whole column. Exactly one of Name and TableColumn is
// set. Patterns are case-insensitive globs: '*' matches any run of
// characters, '?' one byte.
type ColumnRule struct {
	// Name matches the result column's name, e.g. "*password*".
	Name string `yaml:"name,omitempty"`
	// TableColumn is "table.column" or "schema.table.column". It also
	// applies to a column of that name whose source table is unknown (an
	// expression, or metadata without a table), because fail closed beats
	// letting a renamed copy through.
	TableColumn string   `yaml:"table_column,omitempty"`
	Strategy    Strategy `yaml:"strategy"`
	Keep        *int     `yaml:"keep,omitempty"`
}

// Strategy says how a sensitive value is replaced.
type Strategy string

// The masking strategies.
const (
	// Redact replaces the value with a fixed placeholder: "[redacted]" for
	// a column, "[redacted:ENTITY]" for a detected entity.
	Redact Strategy = "redact"
	// Partial keeps the last Keep characters and separators and stars the
	// rest; an email keeps its first character and its domain.
	Partial Strategy = "partial"
	// Hash replaces the value with "hash:" and the first 16 hex digits of
	// its HMAC-SHA256 under HashKey: stable, so equal values stay equal.
	Hash Strategy = "hash"
	// Null makes the value SQL NULL (a detected entity nulls the whole
	// value, an array element or a JSON scalar; in free text it redacts).
	Null Strategy = "null"
)

const (
	defaultKeep = 4
	maxKeep     = 64
	minHashKey  = 16
)

// Validate reports every problem in the block at path (e.g.
// "connections[1].masking"), each with its full path, joined.
func (c *Config) Validate(path string) error {
	var errs []error
	hashUsers := []string{}
	type owner struct {
		rule  int
		group bool
	}
	owners := map[entity]owner{}
	for i, r := range c.Detect {
		p := fmt.Sprintf("%s.detect[%d]", path, i)
		if r.Entity == "" {
			errs = append(errs, fmt.Errorf("%s.entity: missing (want %s)", p, entityHelp()))
		} else if ents, group, ok := lookupEntity(r.Entity); !ok {
			errs = append(errs, fmt.Errorf("%s.entity: unknown entity %q (want %s)", p, r.Entity, entityHelp()))
		} else {
			clash := map[int][]string{}
			var order []int
			for _, e := range ents {
				prev, seen := owners[e]
				switch {
				case !seen || (prev.group && !group):
					owners[e] = owner{i, group}
				case prev.group == group:
					if clash[prev.rule] == nil {
						order = append(order, prev.rule)
					}
					clash[prev.rule] = append(clash[prev.rule], e.String())
				}
			}
			for _, r := range order {
				errs = append(errs, fmt.Errorf("%s.entity: %s already configured by %s.detect[%d]", p, strings.Join(clash[r], ", "), path, r))
			}
		}
		errs = append(errs, validateStrategy(p, r.Strategy, r.Keep)...)
		if r.Strategy == Hash {
			hashUsers = append(hashUsers, p)
		}
	}
	for i, r := range c.Columns {
		p := fmt.Sprintf("%s.columns[%d]", path, i)
		switch {
		case r.Name == "" && r.TableColumn == "":
			errs = append(errs, fmt.Errorf("%s: missing name or table_column", p))
		case r.Name != "" && r.TableColumn != "":
			errs = append(errs, fmt.Errorf("%s: set name or table_column, not both", p))
		case r.TableColumn != "":
			if _, err := parseTableColumn(r.TableColumn); err != nil {
				errs = append(errs, fmt.Errorf("%s.table_column: %w", p, err))
			}
		case strings.TrimSpace(r.Name) != r.Name:
			errs = append(errs, fmt.Errorf("%s.name: %q has surrounding spaces", p, r.Name))
		}
		errs = append(errs, validateStrategy(p, r.Strategy, r.Keep)...)
		if r.Strategy == Hash {
			hashUsers = append(hashUsers, p)
		}
	}
	for i, r := range c.JSONPaths {
		p := fmt.Sprintf("%s.json_paths[%d]", path, i)
		if _, err := parseJSONPath(r.Path); err != nil {
			errs = append(errs, fmt.Errorf("%s.path: %w", p, err))
		}
		errs = append(errs, validateStrategy(p, r.Strategy, r.Keep)...)
		if r.Strategy == Hash {
			hashUsers = append(hashUsers, p)
		}
	}
	key := c.HashKey.Reveal()
	switch {
	case key == "" && len(hashUsers) > 0:
		errs = append(errs, fmt.Errorf("%s.hash_key: missing, but the hash strategy is used by %s", path, strings.Join(hashUsers, ", ")))
	case strings.Contains(key, "${"):
		// Never echo the key: say what is wrong with it.
		errs = append(errs, fmt.Errorf("%s.hash_key: contains an unexpanded ${...} reference (is the environment variable set?)", path))
	case key != "" && len(key) < minHashKey:
		errs = append(errs, fmt.Errorf("%s.hash_key: too short (want at least %d bytes of random data)", path, minHashKey))
	}
	for i, e := range c.Exempt {
		p := fmt.Sprintf("%s.exempt[%d]", path, i)
		switch {
		case strings.TrimSpace(e) == "":
			errs = append(errs, fmt.Errorf("%s: empty principal (want a name or \"group:NAME\")", p))
		case e == "group:":
			errs = append(errs, fmt.Errorf("%s: missing group name after \"group:\"", p))
		case e == "*":
			errs = append(errs, fmt.Errorf("%s: \"*\" would exempt every caller; remove the masking block instead", p))
		}
	}
	return errors.Join(errs...)
}

func validateStrategy(path string, s Strategy, keep *int) []error {
	var errs []error
	switch s {
	case Redact, Partial, Hash, Null:
	case "":
		// YAML reads a bare null as no value at all.
		errs = append(errs, fmt.Errorf(`%s.strategy: missing (want redact, partial, hash or null; write null quoted, "null")`, path))
	default:
		errs = append(errs, fmt.Errorf("%s.strategy: unknown strategy %q (want redact, partial, hash or null)", path, s))
	}
	if keep != nil {
		if s != Partial && s != "" {
			errs = append(errs, fmt.Errorf("%s.keep: only applies to strategy partial", path))
		}
		if *keep < 0 || *keep > maxKeep {
			errs = append(errs, fmt.Errorf("%s.keep: %d is out of range (want 0 to %d)", path, *keep, maxKeep))
		}
	}
	return errs
}

// tablePattern is a parsed table_column rule, lower-cased.
type tablePattern struct {
	schema, table, column string // schema may be empty
}

func parseTableColumn(s string) (tablePattern, error) {
	parts := strings.Split(strings.ToLower(s), ".")
	for _, p := range parts {
		if strings.TrimSpace(p) == "" {
			return tablePattern{}, fmt.Errorf("empty part in %q (want table.column or schema.table.column)", s)
		}
	}
	switch len(parts) {
	case 2:
		return tablePattern{table: parts[0], column: parts[1]}, nil
	case 3:
		return tablePattern{schema: parts[0], table: parts[1], column: parts[2]}, nil
	}
	return tablePattern{}, fmt.Errorf("%q has %d parts (want table.column or schema.table.column)", s, len(parts))
}

// keepOf resolves a rule's keep with its default.
func keepOf(k *int) int {
	if k == nil {
		return defaultKeep
	}
	return *k
}
