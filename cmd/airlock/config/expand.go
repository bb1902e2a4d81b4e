package config

import (
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// expandNode replaces ${VAR}, ${VAR:-default} and ${file:PATH} in every
// scalar value of the tree. Expansion happens on values after parsing, never
// on the raw text, so a secret containing YAML syntax cannot change the
// document's structure. Problems are collected with their paths.
func expandNode(n *yaml.Node, path string, getenv func(string) (string, bool), errs *[]error) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			expandNode(c, path, getenv, errs)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			expandNode(n.Content[i+1], joinPath(path, n.Content[i].Value), getenv, errs)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expandNode(c, fmt.Sprintf("%s[%d]", path, i), getenv, errs)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return
		}
		v, err := expand(n.Value, getenv)
		if err != nil {
			*errs = append(*errs, fmt.Errorf("%s: %w", path, err))
			return
		}
		n.Value = v
		// An expanded value is a string unless the whole value was a plain
		// reference whose result reads as another type (a port number).
		if n.Tag == "!!str" || n.Style != 0 {
			n.Tag = "!!str"
		} else {
			n.Tag = ""
		}
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// expand substitutes the references in s. "$${" escapes a literal "${".
func expand(s string, getenv func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ in value")
		}
		ref := s[i+2 : i+end]
		s = s[i+end+1:]
		v, err := resolve(ref, getenv)
		if err != nil {
			return "", err
		}
		b.WriteString(v)
	}
}

func resolve(ref string, getenv func(string) (string, bool)) (string, error) {
	if p, ok := strings.CutPrefix(ref, "file:"); ok {
		data, err := os.ReadFile(p)
		if err != nil {
			// The error names the file, never its content.
			return "", fmt.Errorf("read secret file %s: %w", p, err)
		}
		return strings.TrimRight(string(data), "\r\n"), nil
	}
	name, def, hasDef := strings.Cut(ref, ":-")
	if !validEnvName(name) {
		return "", fmt.Errorf("invalid variable reference ${%s}", ref)
	}
	if v, ok := getenv(name); ok && (v != "" || !hasDef) {
		return v, nil
	}
	if hasDef {
		return def, nil
	}
	return "", fmt.Errorf("environment variable %s is not set (use ${%s:-default} for a default)", name, name)
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}
