package httpreq

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

// Bounds on what a GraphQL request may make the parser do.
const (
	maxGraphQLTokens  = 50000
	maxGraphQLBatch   = 64
	maxFragmentDepth  = 16
	maxRedactedGraphQ = 4 << 10
)

// gqlRequest is one GraphQL request: a document and the operation to run.
type gqlRequest struct {
	Query         *string `json:"query"`
	OperationName string  `json:"operationName"`
}

// graphQLRequest reads the GraphQL requests a request carries: the query
// parameters of a GET, or a POST's JSON body (one request or a batch), or
// a body that is the document itself (application/graphql). ok is false
// when it carries none.
func graphQLRequest(method, rawQuery string, body []byte) ([]gqlRequest, bool) {
	if method == "GET" || method == "HEAD" {
		q, err := url.ParseQuery(rawQuery)
		if err != nil || !q.Has("query") {
			return nil, false
		}
		doc := q.Get("query")
		return []gqlRequest{{Query: &doc, OperationName: q.Get("operationName")}}, true
	}
	t := bytes.TrimSpace(body)
	switch {
	case len(t) == 0:
		return nil, false
	case t[0] == '{':
		var r gqlRequest
		if json.Unmarshal(t, &r) != nil {
			return nil, false
		}
		return []gqlRequest{r}, true
	case t[0] == '[':
		var rs []gqlRequest
		if json.Unmarshal(t, &rs) != nil || len(rs) == 0 {
			return nil, false
		}
		return rs, true
	}
	doc := string(t)
	return []gqlRequest{{Query: &doc}}, true
}

// graphQL classifies the operations reqs run and returns their documents
// as a reviewer reads them.
func (a *Analyzer) graphQL(b *rule.Builder, risk *protocols.Risk, method string, segs []string, reqs []gqlRequest) string {
	var text strings.Builder
	if len(reqs) > maxGraphQLBatch {
		b.Hit(rule.ParseError)
		return "(batch too large)"
	}
	for _, r := range reqs {
		if r.Query == nil {
			// A persisted query's hash alone: the operation is unknown.
			b.Statement("graphql")
			b.Hit(rule.ParseError)
			continue
		}
		if text.Len() < maxRedactedGraphQ {
			text.WriteString(*r.Query)
			text.WriteByte('\n')
		}
		op, frags, ok := operation(*r.Query, r.OperationName)
		if !ok {
			b.Statement("graphql")
			b.Hit(rule.ParseError)
			continue
		}
		kind := string(op.Operation)
		if kind == "" {
			kind = "query"
		}
		b.Statement(kind)
		if op.Operation == ast.Mutation {
			b.Hit(rule.GraphQLMutation)
		}
		for _, f := range rootFields(op.SelectionSet, frags, 0, map[string]bool{}) {
			if f == unknownField {
				b.Hit(rule.ParseError)
				continue
			}
			b.Table(f)
			if f == "__schema" || f == "__type" {
				b.Hit(rule.GraphQLIntrospection)
			}
			for i := range a.routes {
				if r := &a.routes[i]; r.field != "" && strings.EqualFold(r.field, f) && r.matches(method, segs, false) {
					hitRoute(b, risk, r)
				}
			}
		}
	}
	s := strings.TrimSpace(text.String())
	if len(s) > maxRedactedGraphQ {
		s = s[:maxRedactedGraphQ] + "…"
	}
	return s
}

// operation parses doc and returns the operation it runs: the one named
// name, or the only one.
func operation(doc, name string) (*ast.OperationDefinition, ast.FragmentDefinitionList, bool) {
	d, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: doc}, maxGraphQLTokens)
	if err != nil || d == nil {
		return nil, nil, false
	}
	if name == "" {
		if len(d.Operations) != 1 {
			return nil, nil, false
		}
		return d.Operations[0], d.Fragments, true
	}
	op := d.Operations.ForName(name)
	return op, d.Fragments, op != nil
}

// unknownField stands for the fields of a fragment the document does not
// define: what they select is unknown, so the request fails closed.
const unknownField = "\x00"

// rootFields returns the names of the fields a selection set selects at
// its own level, through fragments.
func rootFields(set ast.SelectionSet, frags ast.FragmentDefinitionList, depth int, seen map[string]bool) []string {
	var out []string
	for _, s := range set {
		switch s := s.(type) {
		case *ast.Field:
			out = append(out, s.Name)
		case *ast.InlineFragment:
			if depth < maxFragmentDepth {
				out = append(out, rootFields(s.SelectionSet, frags, depth+1, seen)...)
			}
		case *ast.FragmentSpread:
			f := frags.ForName(s.Name)
			switch {
			case f == nil:
				out = append(out, unknownField)
			case !seen[s.Name] && depth < maxFragmentDepth:
				seen[s.Name] = true
				out = append(out, rootFields(f.SelectionSet, frags, depth+1, seen)...)
			}
		}
	}
	return out
}
