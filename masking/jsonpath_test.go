package masking

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseJSONPath(t *testing.T) {
	for _, tc := range []struct{ in, err string }{
		{"$.data[*].email", ""}, {"$..password", ""}, {"$['a b'][0].c", ""}, {"$.*", ""},
		{"data.email", "must start with $"}, {"$", "selects the whole document"}, {"$.", "must be followed"},
		{"$[x]", "is not *"}, {"$[0", "unclosed"}, {"$..", "must be followed by a name"}, {"$a", "unexpected"},
	} {
		_, err := parseJSONPath(tc.in)
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
		}
	}
}

func TestMaskerJSON(t *testing.T) {
	m := newMasker(t, Config{HashKey: "0123456789abcdef0123",
		Detect: []DetectRule{{Entity: "payment_card", Strategy: Redact}},
		JSONPaths: []JSONPathRule{
			{Path: "$.data[*].email", Strategy: Partial},
			{Path: "$..password", Strategy: Null},
			{Path: "$.meta.owner", Strategy: Redact},
			{Path: "$.data[1].id", Strategy: Hash},
		}})
	in := `{"data":[{"id":1,"email":"jane.doe@example.com","note":"card 4111 1111 1111 1111"},` +
		`{"id":2,"email":"bob@example.org","auth":{"password":"hunter2"}}],` +
		`"meta":{"owner":{"name":"x","list":[1,2]},"email":"stays@example.com"}}`
	out := string(m.JSON([]byte(in)))
	var v any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	for _, gone := range []string{"jane.doe@", "bob@", "hunter2", "4111 1111 1111 1111", `"name":"x"`, `"id":2`} {
		if strings.Contains(out, gone) {
			t.Errorf("%s left in %s", gone, out)
		}
	}
	for _, kept := range []string{`"password":null`, `"owner":"[redacted]"`, "stays@example.com", "[redacted:payment_card]", `"id":1`, `"id":"hash:`} {
		if !strings.Contains(out, kept) {
			t.Errorf("%s missing from %s", kept, out)
		}
	}
	same := []byte(`{"data":[{"id":1}]}`)
	if got := m.JSON(same); &got[0] != &same[0] {
		t.Errorf("an unchanged document was copied")
	}
}

func TestMaskerJSONMalformedFallsBackToText(t *testing.T) {
	m := newMasker(t, Config{Detect: []DetectRule{{Entity: "email", Strategy: Redact}},
		JSONPaths: []JSONPathRule{{Path: "$.x", Strategy: Redact}}})
	got := string(m.JSON([]byte(`{"x": "a", "y": "jane@example.com"`)))
	if strings.Contains(got, "jane@example.com") {
		t.Errorf("a malformed document passed unmasked: %s", got)
	}
}

func TestJSONPathsValidate(t *testing.T) {
	err := (&Config{JSONPaths: []JSONPathRule{{Path: "data", Strategy: Redact}, {Path: "$.a", Strategy: Hash}}}).Validate("m")
	for _, want := range []string{"m.json_paths[0].path: must start with $", "m.hash_key: missing, but the hash strategy is used by m.json_paths[1]"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

// FuzzMaskerJSON masks arbitrary documents with path rules and detectors:
// no panic, and a valid document stays valid.
func FuzzMaskerJSON(f *testing.F) {
	for _, s := range []string{`{"data":[{"email":"a@b.co","password":"x"}]}`, `[1,{"a":{"password":[1,2]}}]`,
		`{"a\u0070ssword":"y"}`, `"plain"`, `{"data":[`} {
		f.Add([]byte(s))
	}
	m := newMasker(f, Config{Detect: []DetectRule{{Entity: "all", Strategy: Partial}},
		JSONPaths: []JSONPathRule{{Path: "$.data[*].email", Strategy: Redact}, {Path: "$..password", Strategy: Null}}})
	f.Fuzz(func(t *testing.T, doc []byte) {
		out := m.JSON(doc)
		if json.Valid(doc) && !json.Valid(out) {
			t.Fatalf("valid %q became invalid %q", doc, out)
		}
	})
}
