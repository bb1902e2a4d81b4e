package httpreq

import (
	"fmt"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

func req(method, path, body string) *protocols.Command {
	return &protocols.Command{Protocol: protocols.HTTP, Text: method + " " + path,
		Payload: &protocols.Payload{Method: method, Path: path, Body: []byte(body)}}
}

func TestAnalyze(t *testing.T) {
	a, err := New(Config{
		Routes: []Route{
			{Methods: []string{"POST", "PUT"}, Path: "/admin/**", Rule: rule.HTTPAdmin},
			{Methods: []string{"POST"}, Path: "/v1/search", Risk: "none"},
			{Path: "/v1/users/*/password", Rule: rule.ReadCredentials},
			{Field: "deleteUser", Rule: rule.HTTPDelete},
			{Path: "/v1/export", Rule: rule.HTTPWrite, Risk: "high"},
		},
		GraphQL: []string{"/graphql"},
	}, "upstream")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method, path, body string
		risk                     protocols.Risk
		rules                    string
		kind                     string
	}{
		{"get is a read", "GET", "/v1/users/7", "", protocols.RiskNone, "[]", "get"},
		{"head", "HEAD", "/", "", protocols.RiskNone, "[]", "head"},
		{"post writes", "POST", "/v1/orders", `{"a":1}`, protocols.RiskLow, "[http.write]", "post"},
		{"patch writes", "PATCH", "/v1/orders/1", ``, protocols.RiskLow, "[http.write]", "patch"},
		{"delete is high", "DELETE", "/v1/users/7", "", protocols.RiskHigh, "[http.delete]", "delete"},
		{"unknown method", "PROPFIND", "/", "", protocols.RiskHigh, "[http.method]", "propfind"},
		{"trace", "TRACE", "/", "", protocols.RiskHigh, "[http.method]", "trace"},
		{"admin route", "POST", "/admin/users", "", protocols.RiskHigh, "[http.admin]", "route"},
		{"admin route deeper", "PUT", "/admin/a/b/c", "", protocols.RiskHigh, "[http.admin]", "route"},
		{"admin route other method", "GET", "/admin/users", "", protocols.RiskNone, "[]", "get"},
		{"encoded admin", "POST", "/%61dmin/users", "", protocols.RiskHigh, "[http.admin]", "route"},
		{"dotted admin", "POST", "/v1/../admin/users", "", protocols.RiskHigh, "[http.admin]", "route"},
		{"upper-case admin", "POST", "/ADMIN/users", "", protocols.RiskHigh, "[http.admin]", "route"},
		{"search is a read", "POST", "/v1/search", `{"q":"x"}`, protocols.RiskNone, "[]", "route"},
		{"star segment", "GET", "/v1/users/7/password", "", protocols.RiskHigh, "[read.credentials]", "route"},
		{"risk raised", "GET", "/v1/export", "", protocols.RiskHigh, "[http.write]", "route"},
		{"graphql query", "POST", "/graphql", `{"query":"{ user(id: 1) { email } }"}`, protocols.RiskNone, "[]", "query"},
		{"graphql mutation", "POST", "/graphql", `{"query":"mutation M { createUser(name: \"a\") { id } }"}`, protocols.RiskMedium, "[graphql.mutation]", "mutation"},
		{"graphql mutation field rule", "POST", "/graphql", `{"query":"mutation { deleteUser(id: 1) { id } }"}`, protocols.RiskHigh, "[graphql.mutation http.delete]", "mutation"},
		{"graphql field through fragment", "POST", "/graphql", `{"query":"mutation { ...F } fragment F on Mutation { deleteUser(id: 1) { id } }"}`, protocols.RiskHigh, "[graphql.mutation http.delete]", "mutation"},
		{"graphql unknown fragment", "POST", "/graphql", `{"query":"mutation { ...G }"}`, protocols.RiskHigh, "[graphql.mutation parse.error]", "mutation"},
		{"graphql introspection", "POST", "/graphql", `{"query":"{ __schema { types { name } } }"}`, protocols.RiskLow, "[graphql.introspection]", "query"},
		{"graphql named op", "POST", "/graphql", `{"query":"query A { a } mutation B { b }","operationName":"B"}`, protocols.RiskMedium, "[graphql.mutation]", "mutation"},
		{"graphql ambiguous", "POST", "/graphql", `{"query":"query A { a } mutation B { b }"}`, protocols.RiskHigh, "[parse.error]", "graphql"},
		{"graphql batch", "POST", "/graphql", `[{"query":"{ a }"},{"query":"mutation { b }"}]`, protocols.RiskMedium, "[graphql.mutation]", "query"},
		{"graphql raw document", "POST", "/graphql", `mutation { b }`, protocols.RiskMedium, "[graphql.mutation]", "mutation"},
		{"graphql get", "GET", "/graphql?query=%7B+a+%7D", "", protocols.RiskNone, "[]", "query"},
		{"graphql get mutation", "GET", "/graphql?query=mutation+%7B+a+%7D", "", protocols.RiskMedium, "[graphql.mutation]", "mutation"},
		{"graphql garbage", "POST", "/graphql", `{"query":"mutation {"}`, protocols.RiskHigh, "[parse.error]", "graphql"},
		{"graphql persisted", "POST", "/graphql", `{"extensions":{"persistedQuery":{"sha256Hash":"ab"}}}`, protocols.RiskHigh, "[parse.error]", "graphql"},
		{"graphql not json", "POST", "/graphql", ``, protocols.RiskHigh, "[parse.error]", ""},
		{"graphql page", "GET", "/graphql", "", protocols.RiskNone, "[]", "get"},
		{"relative path", "GET", "v1", "", protocols.RiskHigh, "[parse.error]", ""},
		{"bad escape", "GET", "/a%zz", "", protocols.RiskHigh, "[parse.error]", ""},
		{"nul byte", "GET", "/a%00b", "", protocols.RiskHigh, "[parse.error]", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := a.Analyze(req(tc.method, tc.path, tc.body))
			if c.Risk != tc.risk || fmt.Sprint(c.Rules) != tc.rules {
				t.Errorf("got %s %v, want %s %s", c.Risk, c.Rules, tc.risk, tc.rules)
			}
			kind := ""
			if len(c.Statements) > 0 {
				kind = c.Statements[0].Kind
			}
			if kind != tc.kind {
				t.Errorf("kind = %q, want %q", kind, tc.kind)
			}
		})
	}
}

func TestWebSocketAndGRPC(t *testing.T) {
	a, err := New(Config{GRPC: true, Routes: []Route{
		{Path: "/shop.Orders/Get", Risk: "none"},
		{Path: "/shop.Admin/*", Rule: rule.HTTPAdmin},
	}}, "upstream")
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/shop.Orders/Get":             "none []",
		"/shop.Orders/Cancel":          "medium [grpc.call]",
		"/shop.Admin/Wipe":             "high [http.admin]",
		"/grpc.health.v1.Health/Check": "none []",
	} {
		c := a.Analyze(req("POST", path, "\x00\x00\x00\x00\x00"))
		if got := fmt.Sprint(c.Risk, " ", c.Rules); got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}
	ws := req("GET", "/socket", "")
	ws.Kind = KindWebSocket
	if c := Default().Analyze(ws); fmt.Sprint(c.Rules) != "[http.websocket]" {
		t.Errorf("websocket: %v", c.Rules)
	}
}

func TestText(t *testing.T) {
	c := Default().Analyze(&protocols.Command{Protocol: protocols.HTTP, Text: "DELETE /v1/users/7"})
	if fmt.Sprint(c.Rules) != "[http.delete]" || c.Redacted != "DELETE /v1/users/7" {
		t.Errorf("got %v %q", c.Rules, c.Redacted)
	}
	c = Default().Analyze(req("POST", "/api/graphql", `{"query":"mutation { a }"}`))
	if fmt.Sprint(c.Rules) != "[graphql.mutation]" || !strings.Contains(c.Redacted, "mutation { a }") {
		t.Errorf("default graphql: %v %q", c.Rules, c.Redacted)
	}
}

func TestRedactQuery(t *testing.T) {
	c := Default().Analyze(req("GET", "/v1/x?api_key=SECRETVALUE&page=2&access_token=T0K3N&sig=abc", ""))
	if strings.Contains(c.Redacted, "SECRETVALUE") || strings.Contains(c.Redacted, "T0K3N") || strings.Contains(c.Redacted, "abc") {
		t.Errorf("credential in redacted text: %q", c.Redacted)
	}
	if !strings.Contains(c.Redacted, "page=2") {
		t.Errorf("plain parameter lost: %q", c.Redacted)
	}
}

func TestConfigErrors(t *testing.T) {
	_, err := New(Config{
		Routes: []Route{
			{Path: "admin", Rule: rule.HTTPAdmin},
			{Path: "/x"},
			{Path: "/y", Rule: "no.such"},
			{Path: "/z", Rule: rule.HTTPAdmin, Risk: "low"},
			{Methods: []string{"GE T"}, Path: "/w", Risk: "none"},
			{Path: "/v", Risk: "severe"},
		},
		GraphQL: []string{"graphql"},
	}, "upstream")
	for _, want := range []string{
		"upstream.routes[0].path: \"admin\" must start with /",
		"upstream.routes[1]: names neither a rule nor a risk",
		"upstream.routes[2].rule: unknown rule id",
		"upstream.routes[3].risk: low is below the risk of rule http.admin (high)",
		"upstream.routes[4].methods[0]",
		"upstream.routes[5].risk: unknown risk",
		"upstream.graphql[0]",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

func TestRulesAreHTTP(t *testing.T) {
	for _, id := range []string{rule.HTTPWrite, rule.HTTPDelete, rule.HTTPMethod, rule.HTTPAdmin, rule.HTTPWebSocket,
		rule.GraphQLMutation, rule.GraphQLIntrospection, rule.GRPCCall} {
		in, ok := rule.Lookup(id)
		if !ok || !in.AppliesTo(protocols.HTTP) {
			t.Errorf("%s is not an HTTP rule of the catalogue", id)
		}
	}
}
