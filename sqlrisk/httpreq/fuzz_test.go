package httpreq

import (
	"fmt"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

// FuzzAnalyze classifies arbitrary requests: no panic, deterministic, and
// a risk never below its rules'.
func FuzzAnalyze(f *testing.F) {
	for _, s := range [][3]string{
		{"GET", "/v1/users/7", ""}, {"POST", "/graphql", `{"query":"mutation { a }"}`},
		{"POST", "/graphql", `[{"query":"{ ...F } fragment F on Query { ...F }"}]`},
		{"DELETE", "/admin/%2e%2e/x", ""}, {"GET", "/graphql?query=%7B__schema%7Bx%7D%7D", ""},
		{"PROP FIND", "/", ""}, {"POST", "/shop.Orders/Get", "\x00\x00\x00\x00\x01x"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	a, err := New(Config{Routes: []Route{{Path: "/admin/**", Rule: rule.HTTPAdmin}, {Field: "x", Rule: rule.HTTPDelete}},
		GraphQL: []string{"/graphql"}}, "")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, path, body string) {
		cmd := &protocols.Command{Protocol: protocols.HTTP, Payload: &protocols.Payload{Method: method, Path: path, Body: []byte(body)}}
		c1, c2 := a.Analyze(cmd), a.Analyze(cmd)
		if fmt.Sprint(c1) != fmt.Sprint(c2) {
			t.Fatalf("not deterministic: %v %v", c1, c2)
		}
		if c1.Risk < rule.RiskOfMax(c1.Rules) {
			t.Fatalf("risk %s below its rules %v", c1.Risk, c1.Rules)
		}
	})
}
