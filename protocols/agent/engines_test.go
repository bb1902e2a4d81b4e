package agent

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
)

func TestRedisReply(t *testing.T) {
	col := func(name, typ string) ColumnInfo { return ColumnInfo{Name: name, Type: typ} }
	for _, tc := range []struct {
		name string
		cols []ColumnInfo
		rows [][]*string
		kind string
		want string
		ok   bool
	}{
		{"map", []ColumnInfo{col("email", "text"), col("n", "number"), col("gone", "number"), col("doc", "json")},
			[][]*string{{strp("a***@example.com"), strp("5"), nil, strp(`{"a":[1,null]}`)}}, "map",
			`{"email":"a***@example.com","n":5,"gone":null,"doc":{"a":[1,null]}}`, true},
		{"empty map", []ColumnInfo{}, [][]*string{{}}, "map", `{}`, true},
		{"map left out", []ColumnInfo{col("a", "text")}, nil, "map", ``, false},
		{"array of strings", []ColumnInfo{col("value", "text")}, [][]*string{{strp("b")}, {nil}, {strp("12")}}, "array", `["b",null,"12"]`, true},
		{"array of integers", []ColumnInfo{col("value", "number")}, [][]*string{{strp("1")}, {strp("0")}}, "array", `[1,0]`, true},
		{"array of JSON", []ColumnInfo{col("value", "json")}, [][]*string{{strp(`"a"`)}, {strp(`2`)}}, "set", `["a",2]`, true},
		{"named elements", []ColumnInfo{col("a", "text"), col("b", "text")}, [][]*string{{strp("x"), nil}}, "array", `["x",null]`, true},
		{"empty array", []ColumnInfo{col("value", "text")}, nil, "array", `[]`, true},
		{"integer", []ColumnInfo{col("value", "number")}, [][]*string{{strp("42")}}, "integer", `42`, true},
		{"double inf", []ColumnInfo{col("value", "number")}, [][]*string{{strp("inf")}}, "double", `"inf"`, true},
		{"bool", []ColumnInfo{col("value", "bool")}, [][]*string{{strp("t")}}, "bool", `true`, true},
		{"null", []ColumnInfo{col("value", "text")}, [][]*string{{nil}}, "null", `null`, true},
		{"bulk", []ColumnInfo{col("value", "text")}, [][]*string{{strp(`say "hi"`)}}, "bulk", `"say \"hi\""`, true},
		{"masked number", []ColumnInfo{col("value", "number")}, [][]*string{{strp("[redacted]")}}, "integer", `"[redacted]"`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, ok := redisReply(tc.cols, tc.rows, tc.kind)
			if ok != tc.ok || string(got) != tc.want {
				t.Fatalf("got %s %v, want %s %v", got, ok, tc.want, tc.ok)
			}
			if ok && !json.Valid(got) {
				t.Fatalf("not JSON: %s", got)
			}
		})
	}
}

// TestQueryInputSchema: the query tool takes sql on SQL connections and
// command on Redis ones, each required where it applies.
func TestQueryInputSchema(t *testing.T) {
	check := func(sc *jsonschema.Schema, args string) error {
		rs, err := sc.Resolve(nil)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(args), &v); err != nil {
			t.Fatal(err)
		}
		return rs.Validate(v)
	}
	both := queryInputSchema([]any{"cache", "main"}, []any{"main"}, []any{"cache"})
	for args, valid := range map[string]bool{
		`{"connection": "main", "sql": "SELECT 1"}`:                  true,
		`{"connection": "main", "sql": "SELECT $1", "params": [1]}`:  true,
		`{"connection": "cache", "command": ["GET", "k"]}`:           true,
		`{"connection": "main", "command": ["GET", "k"]}`:            false,
		`{"connection": "cache", "sql": "SELECT 1"}`:                 false,
		`{"connection": "other", "sql": "SELECT 1"}`:                 false,
		`{"connection": "main", "sql": "SELECT 1", "params": [[1]]}`: true, // refused by the tool itself
	} {
		if err := check(both, args); (err == nil) != valid {
			t.Errorf("%s: %v, want valid %v", args, err, valid)
		}
	}
	if !strings.Contains(both.Properties["command"].Description, "Redis connections (cache)") {
		t.Errorf("command: %s", both.Properties["command"].Description)
	}
	sqlOnly := queryInputSchema([]any{"main"}, []any{"main"}, nil)
	if _, ok := sqlOnly.Properties["command"]; ok || check(sqlOnly, `{"connection": "main"}`) == nil {
		t.Errorf("SQL only: %v", sqlOnly.Properties)
	}
	redisOnly := queryInputSchema([]any{"cache"}, nil, []any{"cache"})
	if _, ok := redisOnly.Properties["params"]; ok || redisOnly.Properties["sql"] != nil || check(redisOnly, `{"connection": "cache", "command": ["PING"]}`) != nil {
		t.Errorf("Redis only: %v", redisOnly.Properties)
	}
}

type textClassifier struct{}

func (textClassifier) Classify(cmd *protocols.Command) *protocols.Classification {
	return &protocols.Classification{Risk: protocols.RiskHigh, Rules: []string{"write.delete"}, Redacted: cmd.Text}
}

type atMasker struct{}

func (atMasker) For(protocols.Identity) protocols.Masker { return atMasker{} }
func (atMasker) Plan([]protocols.Column) protocols.RowMasker {
	return nil
}
func (atMasker) Text(b []byte) []byte {
	if strings.Contains(string(b), "@") {
		return []byte("[email]")
	}
	return b
}

// TestParamsShownToReviewers: parameters are classified by the text
// alone and shown after it, masked.
func TestParamsShownToReviewers(t *testing.T) {
	conns := map[string]*protocols.Connection{"main": {Name: "main", Masking: atMasker{}}}
	p := &paramsClassifier{next: textClassifier{}, connection: func(n string) *protocols.Connection { return conns[n] }}
	params := []engine.Param{{Kind: engine.ParamNumber, Text: "7"}, {Kind: engine.ParamString, Text: "ada@example.com"}, {Kind: engine.ParamNull}}
	cmd := &protocols.Command{Text: "DELETE FROM t WHERE id = $1 AND email = $2 OR $3",
		Payload: &protocols.Payload{Tool: "query", Arguments: engine.Arguments(map[string]string{"connection": "main"}, params)}}
	cls := p.Classify(cmd)
	if cls.Redacted != cmd.Text+"\n-- params: [7,\"[email]\",null]" || cls.Risk != protocols.RiskHigh {
		t.Fatalf("%+v", cls)
	}
	cmd.Payload.Arguments = engine.Arguments(map[string]string{"connection": "main"}, nil)
	if cls := p.Classify(cmd); cls.Redacted != cmd.Text {
		t.Fatalf("without params: %q", cls.Redacted)
	}
}
