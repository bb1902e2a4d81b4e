package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/airlock-gw/airlock/protocols"
)

// A frontend's statement parameters travel in its command's payload:
// Payload.Arguments is a JSON object whose "params" member is an array of
// scalars, in canonical form. protocols.Command.Hash covers the payload, so
// an approval of a statement with some values never runs it with others;
// the classifier reads only the statement's text, as it would on the wire.
// An Executor that supports parameters reads them with CommandParams and
// sends them apart from the text, never written into it.

// ParamKind is the JSON type a parameter came as.
type ParamKind uint8

// The kinds of parameter.
const (
	ParamNull ParamKind = iota
	ParamString
	ParamNumber
	ParamBool
)

// Param is one value bound to a statement's placeholder.
type Param struct {
	Kind ParamKind
	// Text is the value as text: a string's content, a number's literal as
	// the caller wrote it, "true" or "false"; empty for null.
	Text string
}

// ErrParamType is a parameter that is not a string, a number, a boolean or
// null.
var ErrParamType = errors.New("a parameter must be a string, a number, a boolean or null")

// ParseParams decodes JSON values into parameters.
func ParseParams(raw []json.RawMessage) ([]Param, error) {
	out := make([]Param, len(raw))
	for i, r := range raw {
		p, err := parseParam(r)
		if err != nil {
			return nil, fmt.Errorf("params[%d]: %w", i, err)
		}
		out[i] = p
	}
	return out, nil
}

func parseParam(r json.RawMessage) (Param, error) {
	r = bytes.TrimSpace(r)
	if len(r) == 0 {
		return Param{}, ErrParamType
	}
	switch r[0] {
	case 'n':
		return Param{Kind: ParamNull}, nil
	case 't', 'f':
		var b bool
		if err := json.Unmarshal(r, &b); err != nil {
			return Param{}, err
		}
		return Param{Kind: ParamBool, Text: fmt.Sprint(b)}, nil
	case '"':
		var s string
		if err := json.Unmarshal(r, &s); err != nil {
			return Param{}, err
		}
		return Param{Kind: ParamString, Text: s}, nil
	case '[', '{':
		return Param{}, ErrParamType
	}
	d := json.NewDecoder(bytes.NewReader(r))
	d.UseNumber()
	var n json.Number
	if err := d.Decode(&n); err != nil {
		return Param{}, ErrParamType
	}
	return Param{Kind: ParamNumber, Text: n.String()}, nil
}

// MarshalJSON writes the parameter as the JSON value it came as; a number
// keeps its literal, so 7 and 7.0 stay distinct.
func (p Param) MarshalJSON() ([]byte, error) {
	switch p.Kind {
	case ParamString:
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(p.Text); err != nil {
			return nil, err
		}
		return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
	case ParamNumber, ParamBool:
		return []byte(p.Text), nil
	}
	return []byte("null"), nil
}

// Arguments is a payload's canonical arguments: the JSON object of fields
// (keys sorted) with params as its "params" member when there are any.
func Arguments(fields map[string]string, params []Param) []byte {
	m := make(map[string]any, len(fields)+1)
	for k, v := range fields {
		m[k] = v
	}
	if len(params) > 0 {
		m["params"] = params
	}
	b, err := json.Marshal(m)
	if err != nil {
		// Strings and Params always marshal.
		panic(fmt.Sprintf("engine: arguments: %v", err))
	}
	return b
}

// CommandParams returns the parameters in cmd's payload; nil when it has
// none.
func CommandParams(cmd *protocols.Command) ([]Param, error) {
	if cmd.Payload == nil || len(cmd.Payload.Arguments) == 0 || !bytes.Contains(cmd.Payload.Arguments, []byte(`"params"`)) {
		return nil, nil
	}
	var args struct {
		Params []json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(cmd.Payload.Arguments, &args); err != nil {
		return nil, fmt.Errorf("command arguments: %w", err)
	}
	if len(args.Params) == 0 {
		return nil, nil
	}
	return ParseParams(args.Params)
}
