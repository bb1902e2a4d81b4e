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

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

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

// RefsTarget reports whether e mentions a column of the target row.
func RefsTarget(e *Expr) bool {
	ev := &evaluator{memo: map[*Expr]*facts{}}
	return ev.refsTarget(e)
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

// eval folds e to a constant when it depends on no row and no opaque
// expression.
func (ev *evaluator) eval(e *Expr) (Value, bool) {
	if !wellFormed(e) {
		return Value{}, false
	}
	x := ev.f(e)
	if x.valOK == unknown {
		v, ok := ev.eval1(e)
		x.val = v
		set(&x.valOK, ok)
	}
	return x.val, x.valOK == yes
}

func (ev *evaluator) eval1(e *Expr) (Value, bool) {
	m := ev
	switch e.Kind {
	case Const:
		return e.Val, true
	case And, Or:
		return m.evalLogic(e)
	case Not:
		if len(e.Args) != 1 {
			return Value{}, false
		}
		v, ok := m.eval(e.Args[0])
		if !ok {
			return Value{}, false
		}
		t, known := m.truthy(v)
		if !known {
			return Value{}, false
		}
		if v.Kind == Null {
			return v, true
		}
		return Value{Kind: Bool, B: !t}, true
	case Cmp:
		a, ok1 := m.eval(e.Args[0])
		b, ok2 := m.eval(e.Args[1])
		if !ok1 || !ok2 {
			return Value{}, false
		}
		return m.compare(e.Op, a, b)
	case IsNull, IsNotNull:
		v, ok := m.eval(e.Args[0])
		if !ok {
			return Value{}, false
		}
		return Value{Kind: Bool, B: (v.Kind == Null) == (e.Kind == IsNull)}, true
	case BoolTest:
		return m.evalBoolTest(e)
	case Like:
		a, ok1 := m.eval(e.Args[0])
		p, ok2 := m.eval(e.Args[1])
		if !ok1 || !ok2 || e.Op != "like" {
			return Value{}, false
		}
		if a.Kind == Null || p.Kind == Null {
			return Value{Kind: Null}, true
		}
		if a.Kind != Str || p.Kind != Str {
			return Value{}, false
		}
		s, pat := a.S, p.S
		if m.MySQL {
			s, pat = strings.ToLower(s), strings.ToLower(pat)
		}
		return Value{Kind: Bool, B: likeMatch(s, pat)}, true
	case In:
		return m.evalIn(e)
	}
	return Value{}, false
}

func (m *evaluator) evalLogic(e *Expr) (Value, bool) {
	// Three-valued logic: one decisive operand settles the result even when
	// others are unknown (x OR true is true whatever x is).
	decisive := e.Kind == Or
	sawNull, sawUnknown := false, false
	for _, a := range e.Args {
		v, ok := m.eval(a)
		if !ok {
			sawUnknown = true
			continue
		}
		if v.Kind == Null {
			sawNull = true
			continue
		}
		t, known := m.truthy(v)
		if !known {
			sawUnknown = true
			continue
		}
		if t == decisive {
			return Value{Kind: Bool, B: decisive}, true
		}
	}
	if sawUnknown {
		return Value{}, false
	}
	if sawNull {
		return Value{Kind: Null}, true
	}
	return Value{Kind: Bool, B: !decisive}, true
}

func (m *evaluator) evalBoolTest(e *Expr) (Value, bool) {
	v, ok := m.eval(e.Args[0])
	if !ok {
		return Value{}, false
	}
	t, known := m.truthy(v)
	if !known && v.Kind != Null {
		return Value{}, false
	}
	isNull := v.Kind == Null
	var r bool
	switch e.Op {
	case "true":
		r = !isNull && t
	case "not true":
		r = isNull || !t
	case "false":
		r = !isNull && !t
	case "not false":
		r = isNull || t
	case "unknown":
		r = isNull
	case "not unknown":
		r = !isNull
	default:
		return Value{}, false
	}
	return Value{Kind: Bool, B: r}, true
}

func (m *evaluator) evalIn(e *Expr) (Value, bool) {
	x, ok := m.eval(e.Args[0])
	if !ok {
		return Value{}, false
	}
	if x.Kind == Null {
		return x, true
	}
	sawNull, sawUnknown := false, false
	for _, a := range e.Args[1:] {
		v, ok := m.eval(a)
		if !ok {
			sawUnknown = true
			continue
		}
		r, ok := m.compare("=", x, v)
		if !ok {
			sawUnknown = true
			continue
		}
		if r.Kind == Null {
			sawNull = true
			continue
		}
		if r.B {
			return Value{Kind: Bool, B: true}, true
		}
	}
	if sawUnknown {
		return Value{}, false
	}
	if sawNull {
		return Value{Kind: Null}, true
	}
	return Value{Kind: Bool, B: false}, true
}

// truthy reports whether v, used as a condition, selects a row; known is
// false when the dialect would not accept v as a condition at all.
func (m Mode) truthy(v Value) (t, known bool) {
	switch v.Kind {
	case Null:
		return false, true
	case Bool:
		return v.B, true
	case Num:
		return v.N != 0, true
	case Str:
		if m.MySQL {
			return numericPrefix(v.S) != 0, true
		}
		return pgBool(v.S)
	}
	return false, false
}

func (m Mode) compare(op string, a, b Value) (Value, bool) {
	if op == "is distinct" || op == "is not distinct" {
		var same bool
		switch {
		case a.Kind == Null || b.Kind == Null:
			same = a.Kind == b.Kind
		default:
			r, ok := m.compare("=", a, b)
			if !ok {
				return Value{}, false
			}
			same = r.B
		}
		return Value{Kind: Bool, B: same == (op == "is not distinct")}, true
	}
	if a.Kind == Null || b.Kind == Null {
		return Value{Kind: Null}, true
	}
	c, ok := m.order(a, b)
	if !ok {
		return Value{}, false
	}
	var r bool
	switch op {
	case "=":
		r = c == 0
	case "<>":
		r = c != 0
	case "<":
		r = c < 0
	case ">":
		r = c > 0
	case "<=":
		r = c <= 0
	case ">=":
		r = c >= 0
	default:
		return Value{}, false
	}
	return Value{Kind: Bool, B: r}, true
}

// order compares two non-null constants: -1, 0 or 1.
func (m Mode) order(a, b Value) (int, bool) {
	if a.Kind == Str && b.Kind == Str {
		x, y := a.S, b.S
		if m.MySQL {
			x, y = strings.ToLower(strings.TrimRight(x, " ")), strings.ToLower(strings.TrimRight(y, " "))
		}
		return strings.Compare(x, y), true
	}
	if a.Kind == Bool && b.Kind == Bool {
		return cmpFloat(b2f(a.B), b2f(b.B)), true
	}
	if (a.Kind == Bool && b.Kind == Str) || (a.Kind == Str && b.Kind == Bool) {
		if !m.MySQL {
			s, bv := a, b
			if a.Kind == Bool {
				s, bv = b, a
			}
			t, ok := pgBool(s.S)
			if !ok {
				return 0, false
			}
			if a.Kind == Bool {
				return cmpFloat(b2f(bv.B), b2f(t)), true
			}
			return cmpFloat(b2f(t), b2f(bv.B)), true
		}
	}
	x, ok1 := m.number(a)
	y, ok2 := m.number(b)
	if !ok1 || !ok2 {
		return 0, false
	}
	return cmpFloat(x, y), true
}

func (m Mode) number(v Value) (float64, bool) {
	switch v.Kind {
	case Num:
		return v.N, true
	case Bool:
		return b2f(v.B), true
	case Str:
		if m.MySQL {
			return numericPrefix(v.S), true
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v.S), 64)
		return f, err == nil
	}
	return 0, false
}

func cmpFloat(x, y float64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// pgBool parses PostgreSQL's boolean input forms.
func pgBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "t", "tr", "tru", "true", "y", "ye", "yes", "on", "1":
		return true, true
	case "f", "fa", "fal", "fals", "false", "n", "no", "of", "off", "0":
		return false, true
	}
	return false, false
}

// numericPrefix converts a string the way MySQL does in numeric context:
// the longest numeric prefix after leading spaces, 0 when there is none.
func numericPrefix(s string) float64 {
	s = strings.TrimLeft(s, " \t\n\r")
	end := 0
	for end < len(s) {
		c := s[end]
		if (c >= '0' && c <= '9') || c == '.' || ((c == '-' || c == '+') && end == 0) || ((c == 'e' || c == 'E') && end > 0) {
			end++
			continue
		}
		break
	}
	for end > 0 {
		if f, err := strconv.ParseFloat(s[:end], 64); err == nil && !math.IsInf(f, 0) {
			return f
		}
		end--
	}
	return 0
}

// likeMatch implements SQL LIKE with %, _ and backslash escapes. It is the
// classic two-pointer wildcard match (O(len(s)·len(p)) worst case), so that
// a hostile constant pattern cannot make classification exponential.
func likeMatch(s, p string) bool {
	type tok struct {
		c    byte
		kind byte // 'c' literal, '_' any one, '%' any run
	}
	toks := make([]tok, 0, len(p))
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '\\' && i+1 < len(p):
			i++
			toks = append(toks, tok{p[i], 'c'})
		case c == '%' || c == '_':
			toks = append(toks, tok{kind: c})
		default:
			toks = append(toks, tok{c, 'c'})
		}
	}
	si, ti := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case ti < len(toks) && (toks[ti].kind == '_' || (toks[ti].kind == 'c' && toks[ti].c == s[si])):
			si++
			ti++
		case ti < len(toks) && toks[ti].kind == '%':
			star, mark = ti, si
			ti++
		case star >= 0:
			ti = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for ti < len(toks) && toks[ti].kind == '%' {
		ti++
	}
	return ti == len(toks)
}
