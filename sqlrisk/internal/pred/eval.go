package pred

import (
	"math"
	"strconv"
	"strings"
)

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
