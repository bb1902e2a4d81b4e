package postgres

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// copySpec is what masking needs to know of a COPY ... TO STDOUT: where its
// rows come from and how its lines are written.
type copySpec struct {
	relation string   // quoted, possibly schema-qualified table name
	columns  []string // the column list, when given
	query    string   // the inner query of COPY (query) TO STDOUT
	csv      bool
	binary   bool
	header   bool
	delim    byte
	null     []byte
}

// copySpecs parses the COPY ... TO STDOUT statements of a command, in order.
// It returns nil when the text holds none; ok is false when the text looks
// like COPY but cannot be parsed (the caller then fails closed).
func copySpecs(text string) (specs []*copySpec, ok bool) {
	if !containsFold(text, "copy") {
		return nil, true
	}
	tree, err := pg.Parse(text)
	if err != nil {
		return nil, false
	}
	for _, raw := range tree.Stmts {
		cs := raw.GetStmt().GetCopyStmt()
		if cs == nil || cs.IsFrom || cs.IsProgram || cs.Filename != "" {
			continue
		}
		spec := &copySpec{}
		if q := cs.GetQuery(); q != nil {
			out, err := pg.Deparse(&pg.ParseResult{Version: tree.Version, Stmts: []*pg.RawStmt{{Stmt: q}}})
			if err != nil {
				return nil, false
			}
			spec.query = out
		} else if rv := cs.GetRelation(); rv != nil {
			spec.relation = quoteIdent(rv.Relname)
			if rv.Schemaname != "" {
				spec.relation = quoteIdent(rv.Schemaname) + "." + spec.relation
			}
			for _, a := range cs.Attlist {
				spec.columns = append(spec.columns, a.GetString_().GetSval())
			}
		}
		for _, o := range cs.Options {
			d := o.GetDefElem()
			if d == nil {
				continue
			}
			arg := defString(d.GetArg())
			switch d.Defname {
			case "format":
				spec.csv = strings.EqualFold(arg, "csv")
				spec.binary = strings.EqualFold(arg, "binary")
			case "delimiter":
				if len(arg) == 1 {
					spec.delim = arg[0]
				}
			case "null":
				spec.null = []byte(arg)
			case "header":
				spec.header = d.GetArg() == nil || !(strings.EqualFold(arg, "false") || arg == "0" || strings.EqualFold(arg, "off"))
			}
		}
		specs = append(specs, spec)
	}
	return specs, true
}

// defString reads an option's argument whatever node carries it.
func defString(n *pg.Node) string {
	switch {
	case n == nil:
		return ""
	case n.GetString_() != nil:
		return n.GetString_().GetSval()
	case n.GetBoolean() != nil:
		if n.GetBoolean().GetBoolval() {
			return "true"
		}
		return "false"
	case n.GetInteger() != nil:
		if n.GetInteger().GetIval() != 0 {
			return "1"
		}
		return "0"
	}
	return ""
}

func containsFold(s, sub string) bool {
	n := len(sub)
	if n == 0 {
		return true
	}
	// It runs on every masked Query and Parse: compare the first byte,
	// folded, before calling EqualFold at an offset. sub starts with an
	// ASCII letter.
	c0 := sub[0] | 0x20
	for i := 0; i+n <= len(s); i++ {
		if s[i]|0x20 == c0 && strings.EqualFold(s[i:i+n], sub) {
			return true
		}
	}
	return false
}
