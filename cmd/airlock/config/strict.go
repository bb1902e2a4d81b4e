package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
	"gopkg.in/yaml.v3"
)

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	nodeType        = reflect.TypeFor[yaml.Node]()
	configType      = reflect.TypeFor[Config]()
	connectionType  = reflect.TypeFor[Connection]()
)

// errKeysChecked stops an engine's decoding once the keys of its block are
// checked (see keyChecker).
var errKeysChecked = errors.New("keys checked")

// keyChecker checks the keys of the blocks the engines decode, while
// checkKnown walks the file: an engine's section and each connection's
// upstream. It asks the engine to decode with a Decode that only checks
// keys against the type the engine decodes into, so unknown keys are
// reported in the file's order with the rest.
type keyChecker map[string]engine.Engine

// section checks an engine's top-level section; ok is false when no
// engine has that name.
func (k keyChecker) section(name string, n *yaml.Node, errs *[]error) bool {
	e := k[name]
	if e == nil {
		return false
	}
	_ = e.Configure(k.decode(n, name, errs))
	return true
}

// upstream checks the upstream block of the connection conn.
func (k keyChecker) upstream(conn, n *yaml.Node, path string, errs *[]error) {
	protocol := string(protocols.Postgres)
	for i := 0; i+1 < len(conn.Content); i += 2 {
		if conn.Content[i].Value == "protocol" {
			protocol = conn.Content[i+1].Value
		}
	}
	if e := k[protocol]; e != nil {
		_, _ = e.Upstream(k.decode(n, path, errs))
	}
}

func (k keyChecker) decode(n *yaml.Node, path string, errs *[]error) engine.Decode {
	return func(v any) error {
		k.check(n, reflect.TypeOf(v), path, errs, nil)
		return errKeysChecked
	}
}

// checkKnown reports every mapping key in n that t has no field for, with
// its path and line, engines' blocks included.
func checkKnown(n *yaml.Node, t reflect.Type, path string, errs *[]error) {
	keyChecker(nil).check(n, t, path, errs, nil)
}

// check reports every mapping key in n that t has no field for, with its
// path and line. yaml.v3 offers KnownFields only on a Decoder reading text,
// and the tree is decoded after ${VAR} expansion, so the check walks the
// tree itself against the structs' yaml tags. parent is n's mapping.
func (k keyChecker) check(n *yaml.Node, t reflect.Type, path string, errs *[]error, parent *yaml.Node) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			k.check(c, t, path, errs, nil)
		}
		return
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		k.check(n.Alias, t, path, errs, parent)
		return
	}
	if t == nodeType {
		if parent != nil && strings.HasSuffix(path, ".upstream") {
			k.upstream(parent, n, path, errs)
		}
		return
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || t.Implements(unmarshalerType) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // the decoder reports the type mismatch
		}
		fields := structFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, v := n.Content[i], n.Content[i+1]
			if key.Value == "<<" {
				k.check(v, t, path, errs, parent)
				continue
			}
			ft, ok := fields[key.Value]
			if !ok {
				if t == configType && k.section(key.Value, v, errs) {
					continue
				}
				*errs = append(*errs, fmt.Errorf("%s: unknown key (line %d)", joinPath(path, key.Value), key.Line))
				continue
			}
			k.check(v, ft, joinPath(path, key.Value), errs, n)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, c := range n.Content {
			k.check(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs, nil)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k.check(n.Content[i+1], t.Elem(), joinPath(path, n.Content[i].Value), errs, nil)
		}
	}
}

// structFields maps yaml keys to field types, following inline fields.
func structFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range structFields(ft) {
					out[k] = v
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}
