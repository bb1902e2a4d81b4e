package masking_test

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/airlock-gw/airlock/masking"
	"github.com/airlock-gw/airlock/masking/pgcodec"
	"github.com/airlock-gw/airlock/protocols"
)

// TestPrefilterJSONAndArrays checks that ruling out whole JSON documents and
// text arrays before parsing them changes no row: strings, numbers, \u
// escapes that spell '@' or digits, and array elements with quotes; arrays
// as PostgreSQL's dialect reads them and as opaque values without one.
func TestPrefilterJSONAndArrays(t *testing.T) {
	cols := []protocols.Column{{Name: "doc", Type: protocols.TypeJSON}, {Name: "tags", Type: protocols.TypeArray}, {Name: "note", Type: protocols.TypeText}}
	var values []string
	for _, l := range masking.CorpusLines(t) {
		j, _ := json.Marshal(map[string]any{"v": l, "n": 12})
		values = append(values, string(j), `{"a":[`+strconv.Quote(l)+`]}`, `{`+strconv.Quote(l)+`}`, `{x,"`+l+`"}`)
	}
	values = append(values,
		`{"e":"jane\u0040example.com"}`, `{"c":"\u0034111 1111 1111 1111"}`, `{"n":4111111111111111}`,
		`{"c":"4111 1111 1111 111\u0031"}`, `{"ip":"fe80:\u003a1"}`, `{"a b","jane@example.com"}`, `{1,2,3}`)
	prefiltered := masking.PrefilteredEntities()
	for _, dialect := range []masking.Dialect{nil, pgcodec.Dialect{}} {
		for mask := 1; mask < 1<<len(prefiltered); mask++ {
			var detect []masking.DetectRule
			for i, e := range prefiltered {
				if mask&(1<<i) != 0 {
					detect = append(detect, masking.DetectRule{Entity: e, Strategy: masking.Redact})
				}
			}
			with, without, on, err := masking.NewPrefiltered(masking.Config{Detect: detect}, dialect)
			if err != nil {
				t.Fatal(err)
			}
			if !on {
				t.Fatalf("%v: prefilter off", detect)
			}
			rw, rwo := with.Plan(cols), without.Plan(cols)
			for _, v := range values {
				a := [][]byte{[]byte(v), []byte(v), []byte(v)}
				b := [][]byte{[]byte(v), []byte(v), []byte(v)}
				rw.MaskRow(a)
				rwo.MaskRow(b)
				for i := range a {
					if !bytes.Equal(a[i], b[i]) || (a[i] == nil) != (b[i] == nil) {
						t.Fatalf("%T %v, %s column, %q: prefiltered %q, full %q", dialect, detect, cols[i].Name, v, a[i], b[i])
					}
				}
			}
		}
	}
}

// TestPrefilterJSONAndArraysSecrets is TestPrefilterJSONAndArrays with the
// quickstart's detectors, secrets included: credential keys in JSON
// documents, escapes that join a secret's string, and arrays.
func TestPrefilterJSONAndArraysSecrets(t *testing.T) {
	cols := []protocols.Column{{Name: "doc", Type: protocols.TypeJSON}, {Name: "tags", Type: protocols.TypeArray}, {Name: "note", Type: protocols.TypeText}}
	var values []string
	for _, l := range masking.CorpusLines(t) {
		j, _ := json.Marshal(map[string]any{"v": l, "n": 12})
		k, _ := json.Marshal(map[string]any{"Pass Word": l, "api_key": l, "x": []string{l}})
		values = append(values, string(j), string(k), `{"a":[`+strconv.Quote(l)+`]}`, `{`+strconv.Quote(l)+`}`, `{x,"`+l+`"}`)
	}
	values = append(values,
		`{"password" : "hunter2x"}`, `{"TOKEN":"c2VjcmV0LXZhbHVlLTEyMzQ1Njc4"}`, `{"t":"\u0065yJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"}`,
		`{"e\yJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"}`, `{"AK\IAIOSFODNN7EXAMPLE"}`, `{"gh\p_R2d2C3poBb8LukeLeiaHanSolo1234567890"}`,
		`{"secret":12345678901234}`, `{"aws_secret_access_key":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}`)
	cfg := masking.Config{Detect: []masking.DetectRule{{Entity: "email", Strategy: masking.Partial},
		{Entity: "payment_card", Strategy: masking.Partial}, {Entity: "secrets", Strategy: masking.Redact}}}
	for _, dialect := range []masking.Dialect{nil, pgcodec.Dialect{}} {
		with, without, on, err := masking.NewPrefiltered(cfg, dialect)
		if err != nil {
			t.Fatal(err)
		}
		if !on {
			t.Fatal("prefilter off for the quickstart's detectors")
		}
		rw, rwo := with.Plan(cols), without.Plan(cols)
		for _, v := range values {
			a := [][]byte{[]byte(v), []byte(v), []byte(v)}
			b := [][]byte{[]byte(v), []byte(v), []byte(v)}
			rw.MaskRow(a)
			rwo.MaskRow(b)
			for i := range a {
				if !bytes.Equal(a[i], b[i]) || (a[i] == nil) != (b[i] == nil) {
					t.Fatalf("%T, %s column, %q: prefiltered %q, full %q", dialect, cols[i].Name, v, a[i], b[i])
				}
			}
		}
	}
}
