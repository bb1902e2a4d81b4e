// Package pred decides whether a write's condition bounds the rows it
// touches. The SQL analyzers translate a WHERE (or MERGE ON, or join ON)
// expression into the small dialect-neutral Expr below, then ask
// Mode.Unbounded.
//
// A condition is unbounded when it can hold for every row of the target:
// it is absent, it refers to no column of the target and is not provably
// false (1=1, true, 'a'='a', NOT false, EXISTS (SELECT 1), now() > …), or it
// is a tautology over the target's columns (id = id, x OR NOT x,
// x IS NULL OR x IS NOT NULL, x LIKE '%', id IN (SELECT id FROM target)).
// Tautologies are judged ignoring NULLs: id = id is true for every row whose
// id is not null, which for a key is every row. Conditions that are only true
// for every row because of the data (id > 0 on a serial key) are bounded:
// Airlock judges the statement, not the table's contents.
package pred

import "strings"

// Kind is the shape of an Expr.
type Kind uint8

// Expression kinds.
const (
	// Opaque is an expression Airlock does not model; Refs says whether it
	// mentions a column of the target row.
	Opaque Kind = iota
	Const
	Column
	And
	Or
	Not
	// Cmp compares Args[0] and Args[1] with Op: "=", "<>", "<", ">", "<=",
	// ">=", "is distinct", "is not distinct".
	Cmp
	IsNull
	IsNotNull
	// BoolTest is IS [NOT] TRUE|FALSE|UNKNOWN; Op is "true", "not true",
	// "false", "not false", "unknown" or "not unknown".
	BoolTest
	// Like matches Args[0] against pattern Args[1]; Op is "like" (also
	// ILIKE) or "regex".
	Like
	// In is Args[0] IN (Args[1:]...).
	In
	// SubSelectAll is a sub-query that yields every value of the target's
	// column Key (SELECT id FROM target, no filter).
	SubSelectAll
	// Func is a deterministic function or arithmetic operator Op applied
	// to Args: never folded, but equal to itself (lower(x) = lower(x)).
	Func
)

// Deterministic lists the functions (lower case) whose calls the analyzers
// may translate to Func: same arguments, same result.
var Deterministic = map[string]bool{
	"lower": true, "upper": true, "trim": true, "ltrim": true, "rtrim": true, "btrim": true,
	"coalesce": true, "ifnull": true, "abs": true, "length": true, "char_length": true,
	"character_length": true, "octet_length": true, "md5": true, "concat": true, "substr": true,
	"substring": true, "round": true, "floor": true, "ceil": true, "ceiling": true, "left": true,
	"right": true, "reverse": true, "lpad": true, "rpad": true, "replace": true, "sign": true,
	"greatest": true, "least": true, "date": true, "hex": true, "to_char": true,
}

// ValKind is the type of a constant.
type ValKind uint8

// Constant kinds.
const (
	Null ValKind = iota
	Bool
	Num
	Str
)

// Value is a constant.
type Value struct {
	Kind ValKind
	B    bool
	N    float64
	S    string
}

// Expr is a condition in dialect-neutral form.
type Expr struct {
	Kind Kind
	Op   string
	Args []*Expr
	Val  Value
	// Key is a Column's canonical name (qualifier dropped when it names the
	// target) or the column a SubSelectAll yields.
	Key string
	// Target says whether a Column resolves to the target row.
	Target bool
	// Refs says whether an Opaque expression mentions the target row.
	Refs bool
}

// Mode carries the dialect's evaluation rules.
type Mode struct {
	// MySQL compares strings case-insensitively ignoring trailing spaces,
	// converts strings to numbers by their numeric prefix and treats
	// numbers as booleans.
	MySQL bool
}

// Unbounded reports whether a write with condition where (nil: none) can
// touch every row of its target. It runs in time linear in the size of the
// condition: AND/OR chains are flattened and every judgement is memoised per
// node, so that a generated condition of thousands of terms stays cheap.
func (m Mode) Unbounded(where *Expr) bool {
	if where == nil {
		return true
	}
	ev := &evaluator{Mode: m, memo: map[*Expr]*facts{}}
	return ev.mayBeAll(flatten(where))
}

// evaluator memoises judgements about the nodes of one condition.
type evaluator struct {
	Mode
	memo map[*Expr]*facts
}

type tri uint8

const (
	unknown tri = iota
	yes
	no
)

type facts struct {
	val                        Value
	valOK                      tri
	refs, taut, contra, mayAll tri
	key                        string
	keyOK                      tri
}

func (ev *evaluator) f(e *Expr) *facts {
	x, ok := ev.memo[e]
	if !ok {
		x = &facts{}
		ev.memo[e] = x
	}
	return x
}

func set(t *tri, v bool) bool {
	if v {
		*t = yes
	} else {
		*t = no
	}
	return v
}

// flatten merges nested AND into AND and OR into OR, iteratively, so that
// a left-deep chain (a OR b OR c …, as the TiDB parser builds it) becomes
// one node with many operands.
func flatten(e *Expr) *Expr {
	if e == nil {
		return nil
	}
	if e.Kind == And || e.Kind == Or {
		// Depth-first, left to right, with an explicit stack (children
		// pushed in reverse) so that a chain of n links costs O(n).
		var args []*Expr
		stack := make([]*Expr, 0, len(e.Args))
		for i := len(e.Args) - 1; i >= 0; i-- {
			stack = append(stack, e.Args[i])
		}
		for len(stack) > 0 {
			a := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if a != nil && a.Kind == e.Kind {
				for i := len(a.Args) - 1; i >= 0; i-- {
					stack = append(stack, a.Args[i])
				}
				continue
			}
			args = append(args, a)
		}
		out := *e
		out.Args = args
		e = &out
	}
	if len(e.Args) == 0 {
		return e
	}
	out := *e
	out.Args = make([]*Expr, len(e.Args))
	for i, a := range e.Args {
		out.Args[i] = flatten(a)
	}
	return &out
}

func (ev *evaluator) refsTarget(e *Expr) bool {
	if e == nil {
		return false
	}
	x := ev.f(e)
	if x.refs != unknown {
		return x.refs == yes
	}
	switch e.Kind {
	case Column:
		return set(&x.refs, e.Target)
	case Opaque, SubSelectAll:
		if e.Refs {
			return set(&x.refs, true)
		}
	}
	for _, a := range e.Args {
		if ev.refsTarget(a) {
			return set(&x.refs, true)
		}
	}
	return set(&x.refs, false)
}

func (ev *evaluator) mayBeAll(e *Expr) bool {
	if e == nil {
		return true
	}
	x := ev.f(e)
	if x.mayAll != unknown {
		return x.mayAll == yes
	}
	if v, ok := ev.eval(e); ok {
		t, known := ev.truthy(v)
		return set(&x.mayAll, t || !known)
	}
	if !ev.refsTarget(e) {
		// Row-independent and not provably false: all rows or none.
		return set(&x.mayAll, true)
	}
	switch e.Kind {
	case Or:
		for _, a := range e.Args {
			if ev.mayBeAll(a) {
				return set(&x.mayAll, true)
			}
		}
	case And:
		for _, a := range e.Args {
			if !ev.mayBeAll(a) {
				return set(&x.mayAll, false)
			}
		}
		return set(&x.mayAll, true)
	}
	return set(&x.mayAll, ev.tautology(e))
}

// wellFormed reports whether e has the operands its kind needs; anything
// else is treated as unknown.
func wellFormed(e *Expr) bool {
	if e == nil {
		return false
	}
	for _, a := range e.Args {
		if a == nil {
			return false
		}
	}
	switch e.Kind {
	case Cmp, Like:
		return len(e.Args) == 2
	case Not, IsNull, IsNotNull, BoolTest:
		return len(e.Args) == 1
	case In:
		return len(e.Args) >= 1
	}
	return true
}

// tautology reports whether e holds for every row (ignoring NULLs).
func (ev *evaluator) tautology(e *Expr) bool {
	if !wellFormed(e) {
		return false
	}
	x := ev.f(e)
	if x.taut == unknown {
		set(&x.taut, ev.tautology1(e))
	}
	return x.taut == yes
}

func (ev *evaluator) tautology1(e *Expr) bool {
	m := ev
	if v, ok := m.eval(e); ok {
		t, known := m.truthy(v)
		return t && known
	}
	switch e.Kind {
	case Or:
		for _, a := range e.Args {
			if m.tautology(a) {
				return true
			}
		}
		return ev.hasComplement(e.Args)
	case And:
		for _, a := range e.Args {
			if !m.tautology(a) {
				return false
			}
		}
		return len(e.Args) > 0
	case Not:
		return len(e.Args) == 1 && m.contradiction(e.Args[0])
	case Cmp:
		switch e.Op {
		case "=", "<=", ">=", "is not distinct":
			return ev.equal(e.Args[0], e.Args[1])
		}
	case Like:
		if p, ok := m.eval(e.Args[1]); ok && p.Kind == Str {
			if e.Op == "like" {
				return p.S != "" && strings.Trim(p.S, "%") == ""
			}
			switch p.S {
			case "", ".*", "^", "^.*", ".*$", "^.*$", "$":
				return true
			}
		}
	case In:
		x := e.Args[0]
		for _, a := range e.Args[1:] {
			if ev.equal(x, a) {
				return true
			}
			if a.Kind == SubSelectAll && x.Kind == Column && x.Target && a.Key == x.Key {
				return true
			}
		}
	case BoolTest:
		switch e.Op {
		case "true", "not false":
			return m.tautology(e.Args[0])
		case "false", "not true":
			return m.contradiction(e.Args[0])
		}
	}
	return false
}

// contradiction reports whether e holds for no row.
func (ev *evaluator) contradiction(e *Expr) bool {
	if !wellFormed(e) {
		return false
	}
	x := ev.f(e)
	if x.contra == unknown {
		set(&x.contra, ev.contradiction1(e))
	}
	return x.contra == yes
}

func (ev *evaluator) contradiction1(e *Expr) bool {
	m := ev
	if v, ok := m.eval(e); ok {
		t, known := m.truthy(v)
		return !t && known
	}
	switch e.Kind {
	case And:
		for _, a := range e.Args {
			if m.contradiction(a) {
				return true
			}
		}
		return ev.hasComplement(e.Args)
	case Or:
		for _, a := range e.Args {
			if !m.contradiction(a) {
				return false
			}
		}
		return len(e.Args) > 0
	case Not:
		return len(e.Args) == 1 && m.tautology(e.Args[0])
	case Cmp:
		switch e.Op {
		case "<>", "<", ">", "is distinct":
			return ev.equal(e.Args[0], e.Args[1])
		}
	}
	return false
}
