package redis

import (
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/redis/resp"
)

func TestUpstreamKeys(t *testing.T) {
	decode := func(src string) func(v any) error {
		return func(v any) error {
			d := yaml.NewDecoder(strings.NewReader(src))
			d.KnownFields(true)
			return d.Decode(v)
		}
	}
	e := New()
	u, err := e.Upstream(decode(`
address: 127.0.0.1:6379
keys:
  - {pattern: "user:*", type: hash, description: A customer, fields: [email, name]}
  - {pattern: "session:*", type: string}
`))
	if err != nil {
		t.Fatal(err)
	}
	s := e.DescribeConfigured(&protocols.Connection{Upstream: u})
	if len(s.Keys) != 2 || s.Keys[0].Pattern != "user:*" || s.Keys[0].Type != "hash" || strings.Join(s.Keys[0].Fields, ",") != "email,name" ||
		s.Keys[0].Description != "A customer" || s.Tables == nil {
		t.Fatalf("schema %+v", s)
	}
	if s := e.DescribeConfigured(&protocols.Connection{}); len(s.Keys) != 0 {
		t.Fatalf("no keys configured: %+v", s)
	}
	_, err = e.Upstream(decode(`
address: 127.0.0.1:6379
keys:
  - {pattern: "", type: hash}
  - {pattern: "a b", type: string}
  - {pattern: "x:*", type: table}
  - {pattern: "x:*", type: list, fields: [a]}
  - {pattern: "y:*", type: hash, fields: [""]}
`))
	for _, want := range []string{"keys[0].pattern: missing", "keys[1].pattern: \"a b\" has white space", "keys[2].type: \"table\" is not a Redis type",
		"keys[3].pattern: \"x:*\" is also keys[2]'s", "keys[3].fields: a list has no fields", "keys[4].fields[0]: empty"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
	if _, err := e.Upstream(decode("address: 127.0.0.1:6379\nkeys: [{pattern: a, type: string, colour: red}]\n")); err == nil {
		t.Error("an unknown field in keys was accepted")
	}
}

// TestTabulateKeepsTypes: the tag and the column types say enough of a
// reply for a frontend to rebuild it with its types.
func TestTabulateKeepsTypes(t *testing.T) {
	s := func(k resp.Kind, v string) *value { return &value{kind: k, str: []byte(v)} }
	arr := func(k resp.Kind, e ...*value) *value { return &value{kind: k, elems: e} }
	null := &value{kind: resp.Null, null: true}
	for _, tc := range []struct {
		name  string
		v     *value
		sh    shape
		kind  string
		types []protocols.ValueType
		rows  string
	}{
		{"map", arr(resp.Map, s(resp.BulkString, "email"), s(resp.BulkString, "a@b.c"), s(resp.BulkString, "n"), s(resp.Integer, "5")), noShape,
			"map", []protocols.ValueType{protocols.TypeText, protocols.TypeNumber}, "a@b.c|5"},
		{"integers", arr(resp.Array, s(resp.Integer, "1"), null, s(resp.Integer, "0")), noShape,
			"array", []protocols.ValueType{protocols.TypeNumber}, "1;NULL;0"},
		{"mixed elements", arr(resp.Array, s(resp.BulkString, "a"), s(resp.Integer, "2")), noShape,
			"array", []protocols.ValueType{protocols.TypeJSON}, `"a";2`},
		{"nested", arr(resp.Set, arr(resp.Array, s(resp.BulkString, "m"), s(resp.Double, "1.5"))), noShape,
			"set", []protocols.ValueType{protocols.TypeJSON}, `["m",1.5]`},
		{"hmget", arr(resp.Array, s(resp.BulkString, "x"), null), shape{names: []string{"a", "b"}, namesAt: 1},
			"array", []protocols.ValueType{protocols.TypeText, protocols.TypeText}, "x|NULL"},
		{"integer", s(resp.Integer, "3"), noShape, "integer", []protocols.ValueType{protocols.TypeNumber}, "3"},
		{"null", null, noShape, "null", []protocols.ValueType{protocols.TypeText}, "NULL"},
		{"empty array", arr(resp.Array), noShape, "array", []protocols.ValueType{protocols.TypeText}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cols, rows, kind := tabulate(tc.v, tc.sh)
			var types []protocols.ValueType
			for _, c := range cols {
				types = append(types, c.Type)
			}
			var lines []string
			for _, r := range rows {
				var cells []string
				for _, c := range r {
					if c == nil {
						cells = append(cells, "NULL")
					} else {
						cells = append(cells, string(c))
					}
				}
				lines = append(lines, strings.Join(cells, "|"))
			}
			if kind != tc.kind || !slices.Equal(types, tc.types) || strings.Join(lines, ";") != tc.rows {
				t.Fatalf("got %s %v %q, want %s %v %q", kind, types, strings.Join(lines, ";"), tc.kind, tc.types, tc.rows)
			}
		})
	}
}
