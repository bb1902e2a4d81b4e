package engine_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
)

func TestParams(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []engine.Param
		err  error
	}{
		{name: "scalars", in: `[7, "a<b", true, null, -1.50, 1e3]`, want: []engine.Param{
			{Kind: engine.ParamNumber, Text: "7"}, {Kind: engine.ParamString, Text: "a<b"}, {Kind: engine.ParamBool, Text: "true"},
			{Kind: engine.ParamNull}, {Kind: engine.ParamNumber, Text: "-1.50"}, {Kind: engine.ParamNumber, Text: "1e3"}}},
		{name: "an array", in: `[[1]]`, err: engine.ErrParamType},
		{name: "an object", in: `[{"a": 1}]`, err: engine.ErrParamType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var raw []json.RawMessage
			if err := json.Unmarshal([]byte(tc.in), &raw); err != nil {
				t.Fatal(err)
			}
			got, err := engine.ParseParams(raw)
			if !errors.Is(err, tc.err) || len(got) != len(tc.want) {
				t.Fatalf("ParseParams(%s) = %v, %v", tc.in, got, err)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("params[%d] = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
			if tc.err != nil {
				return
			}
			// The payload round-trips, canonically.
			cmd := &protocols.Command{Payload: &protocols.Payload{Tool: "query", Arguments: engine.Arguments(map[string]string{"connection": "main"}, got)}}
			back, err := engine.CommandParams(cmd)
			if err != nil || len(back) != len(got) {
				t.Fatalf("CommandParams: %v, %v", back, err)
			}
			for i := range back {
				if back[i] != got[i] {
					t.Errorf("round trip params[%d] = %+v, want %+v", i, back[i], got[i])
				}
			}
		})
	}
}

// TestParamsInTheHash: an approval of a statement with some values must
// not cover it with others, and the same values always hash alike.
func TestParamsInTheHash(t *testing.T) {
	cmd := func(params ...engine.Param) *protocols.Command {
		return &protocols.Command{Protocol: protocols.Postgres, Text: "DELETE FROM t WHERE id = $1",
			Payload: &protocols.Payload{Tool: "query", Arguments: engine.Arguments(map[string]string{"connection": "main"}, params)}}
	}
	seven := engine.Param{Kind: engine.ParamNumber, Text: "7"}
	if cmd(seven).Hash() != cmd(seven).Hash() {
		t.Fatal("the same command hashes differently")
	}
	for _, other := range [][]engine.Param{{{Kind: engine.ParamNumber, Text: "8"}}, {{Kind: engine.ParamString, Text: "7"}}, nil, {seven, seven}} {
		if cmd(other...).Hash() == cmd(seven).Hash() {
			t.Errorf("params %v hash like [7]", other)
		}
	}
	if p, err := engine.CommandParams(cmd()); p != nil || err != nil {
		t.Errorf("no params: %v %v", p, err)
	}
	if got := string(engine.Arguments(map[string]string{"connection": "main"}, nil)); got != `{"connection":"main"}` {
		t.Errorf("arguments without params: %s", got)
	}
}
