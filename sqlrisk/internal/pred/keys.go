package pred

import (
	"fmt"
	"strings"
)

var complementOp = map[string]string{
	"=": "<>", "<>": "=", "<": ">=", ">=": "<", ">": "<=", "<=": ">",
	"is distinct": "is not distinct", "is not distinct": "is distinct",
}

// hasComplement reports whether two of args are each other's negation
// (x and NOT x, x IS NULL and x IS NOT NULL, a = b and a <> b), by
// canonical keys: linear in the number of operands.
func (ev *evaluator) hasComplement(args []*Expr) bool {
	seen := make(map[string]bool, len(args))
	for _, a := range args {
		if k, ok := ev.key(a); ok {
			seen[k] = true
		}
	}
	for _, a := range args {
		if c, ok := ev.complementKey(a); ok && seen[c] {
			return true
		}
	}
	return false
}

func (ev *evaluator) complementKey(a *Expr) (string, bool) {
	if !wellFormed(a) {
		return "", false
	}
	switch a.Kind {
	case Not:
		return ev.key(a.Args[0])
	case IsNull, IsNotNull:
		k, ok := ev.key(a.Args[0])
		if !ok {
			return "", false
		}
		if a.Kind == IsNull {
			return "notnull(" + k + ")", true
		}
		return "isnull(" + k + ")", true
	case Cmp:
		op, ok := complementOp[a.Op]
		if !ok {
			return "", false
		}
		return ev.key(&Expr{Kind: Cmp, Op: op, Args: a.Args})
	}
	k, ok := ev.key(a)
	if !ok {
		return "", false
	}
	return "not(" + k + ")", true
}

// key returns a canonical text for e; ok is false for expressions that
// contain an opaque part (Airlock does not know what they compute, so two
// of them are never the same).
func (ev *evaluator) key(e *Expr) (string, bool) {
	if !wellFormed(e) {
		return "", false
	}
	x := ev.f(e)
	if x.keyOK != unknown {
		return x.key, x.keyOK == yes
	}
	var k string
	switch e.Kind {
	case Opaque, SubSelectAll:
		set(&x.keyOK, false)
		return "", false
	case Const:
		k = fmt.Sprintf("c%d:%v:%v:%q", e.Val.Kind, e.Val.B, e.Val.N, e.Val.S)
	case Column:
		k = fmt.Sprintf("col:%v:%q", e.Target, e.Key)
	default:
		var b strings.Builder
		fmt.Fprintf(&b, "%d:%s(", e.Kind, e.Op)
		for i, a := range e.Args {
			ak, ok := ev.key(a)
			if !ok {
				set(&x.keyOK, false)
				return "", false
			}
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(ak)
		}
		b.WriteByte(')')
		k = b.String()
	}
	switch e.Kind {
	case Not:
		if ak, ok := ev.key(e.Args[0]); ok {
			k = "not(" + ak + ")"
		}
	case IsNull:
		if ak, ok := ev.key(e.Args[0]); ok {
			k = "isnull(" + ak + ")"
		}
	case IsNotNull:
		if ak, ok := ev.key(e.Args[0]); ok {
			k = "notnull(" + ak + ")"
		}
	}
	x.key = k
	set(&x.keyOK, true)
	return k, true
}

// equal reports whether a and b are the same known expression.
func (ev *evaluator) equal(a, b *Expr) bool {
	ka, ok1 := ev.key(a)
	kb, ok2 := ev.key(b)
	return ok1 && ok2 && ka == kb
}
