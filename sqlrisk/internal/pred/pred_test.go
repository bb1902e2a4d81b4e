package pred

import (
	"strings"
	"testing"
)

func num(n float64) *Expr   { return &Expr{Kind: Const, Val: Value{Kind: Num, N: n}} }
func str(s string) *Expr    { return &Expr{Kind: Const, Val: Value{Kind: Str, S: s}} }
func boolean(b bool) *Expr  { return &Expr{Kind: Const, Val: Value{Kind: Bool, B: b}} }
func null() *Expr           { return &Expr{Kind: Const, Val: Value{Kind: Null}} }
func col(name string) *Expr { return &Expr{Kind: Column, Key: name, Target: true} }
func other(name string) *Expr {
	return &Expr{Kind: Column, Key: "o." + name}
}
func param() *Expr                    { return &Expr{Kind: Opaque} }
func cmp(op string, a, b *Expr) *Expr { return &Expr{Kind: Cmp, Op: op, Args: []*Expr{a, b}} }
func or(a ...*Expr) *Expr             { return &Expr{Kind: Or, Args: a} }
func and(a ...*Expr) *Expr            { return &Expr{Kind: And, Args: a} }
func not(a *Expr) *Expr               { return &Expr{Kind: Not, Args: []*Expr{a}} }

func TestUnbounded(t *testing.T) {
	pg, my := Mode{}, Mode{MySQL: true}
	tests := []struct {
		name      string
		m         Mode
		e         *Expr
		unbounded bool
	}{
		{"none", pg, nil, true},
		{"1=1", pg, cmp("=", num(1), num(1)), true},
		{"true", pg, boolean(true), true},
		{"false", pg, boolean(false), false},
		{"null", pg, null(), false},
		{"'a'='a'", pg, cmp("=", str("a"), str("a")), true},
		{"'a'='A' postgres", pg, cmp("=", str("a"), str("A")), false},
		{"'a'='A' mysql", my, cmp("=", str("a"), str("A")), true},
		{"'a '='a' mysql pads", my, cmp("=", str("a "), str("a")), true},
		{"1 mysql", my, num(1), true},
		{"'abc' mysql is 0", my, str("abc"), false},
		{"'1abc' mysql", my, str("1abc"), true},
		{"not false", pg, not(boolean(false)), true},
		{"id = $1", pg, cmp("=", col("id"), param()), false},
		{"id = id", pg, cmp("=", col("id"), col("id")), true},
		{"id <> id", pg, cmp("<>", col("id"), col("id")), false},
		{"id = 5 or 1=1", pg, or(cmp("=", col("id"), num(5)), cmp("=", num(1), num(1))), true},
		{"id = 5 or $2", pg, or(cmp("=", col("id"), num(5)), param()), true},
		{"id = 5 and 1=1", pg, and(cmp("=", col("id"), num(5)), cmp("=", num(1), num(1))), false},
		{"x or not x", pg, or(col("active"), not(col("active"))), true},
		{"x < 5 or x >= 5", pg, or(cmp("<", col("x"), num(5)), cmp(">=", col("x"), num(5))), true},
		{"x = 5 and x <> 5 is empty", pg, and(cmp("=", col("x"), num(5)), cmp("<>", col("x"), num(5))), false},
		{"other table only", pg, cmp("=", other("flag"), num(1)), true},
		{"other table joined", pg, cmp("=", other("id"), col("uid")), false},
		{"in list with itself", pg, &Expr{Kind: In, Args: []*Expr{col("id"), num(1), col("id")}}, true},
		{"in subselect of itself", pg, &Expr{Kind: In, Args: []*Expr{col("id"), {Kind: SubSelectAll, Key: "id"}}}, true},
		{"in subselect of another column", pg, &Expr{Kind: In, Args: []*Expr{col("id"), {Kind: SubSelectAll, Key: "uid"}}}, false},
		{"like %", pg, &Expr{Kind: Like, Op: "like", Args: []*Expr{col("n"), str("%%")}}, true},
		{"like a%", pg, &Expr{Kind: Like, Op: "like", Args: []*Expr{col("n"), str("a%")}}, false},
		{"constant like", pg, &Expr{Kind: Like, Op: "like", Args: []*Expr{str("abc"), str("a_c")}}, true},
		{"is not false of tautology", pg, &Expr{Kind: BoolTest, Op: "not false", Args: []*Expr{cmp("=", col("x"), col("x"))}}, true},
		{"opaque referencing row", pg, &Expr{Kind: Opaque, Refs: true}, false},
		{"malformed", pg, &Expr{Kind: Cmp, Args: []*Expr{col("x")}}, false},
		{"is null or is not null", pg, or(&Expr{Kind: IsNull, Args: []*Expr{col("e")}}, &Expr{Kind: IsNotNull, Args: []*Expr{col("e")}}), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.m.Unbounded(tc.e); got != tc.unbounded {
				t.Errorf("Unbounded = %v, want %v", got, tc.unbounded)
			}
		})
	}
}

func TestLikeMatch(t *testing.T) {
	for _, tc := range []struct {
		s, p string
		want bool
	}{
		{"abc", "a%", true}, {"abc", "%c", true}, {"abc", "a_c", true}, {"abc", "a\\_c", false},
		{"a_c", "a\\_c", true}, {"", "%", true}, {"abc", "", false},
	} {
		if got := likeMatch(tc.s, tc.p); got != tc.want {
			t.Errorf("likeMatch(%q, %q) = %v", tc.s, tc.p, got)
		}
	}
	// A backtracking matcher would not finish this before the test
	// timeout; the two-pointer one takes microseconds.
	if likeMatch(strings.Repeat("a", 5000), strings.Repeat("%a", 40)+"%b") {
		t.Error("hostile pattern matched")
	}
}

// TestLongChains: a generated condition of many terms, left-deep as the
// TiDB parser builds it, is judged correctly (and, being linear, quickly:
// the cubic evaluator this replaced did not finish within the test
// timeout; BenchmarkLongChain measures it).
func TestLongChains(t *testing.T) {
	var e *Expr = cmp("=", col("id"), num(0))
	for i := 1; i < 20000; i++ {
		e = or(e, cmp("=", col("id"), num(float64(i))))
	}
	if (Mode{MySQL: true}).Unbounded(e) {
		t.Error("an OR of key lookups is bounded")
	}
	e = or(e, not(cmp("=", col("id"), num(0))), cmp("=", col("id"), num(0)))
	if !(Mode{}).Unbounded(e) {
		t.Error("x OR NOT x far apart in a long chain")
	}
	var nested *Expr = cmp("=", col("id"), num(0))
	for i := 1; i < 3000; i++ {
		if i%2 == 0 {
			nested = and(cmp("=", col("a"), num(float64(i))), nested)
		} else {
			nested = or(cmp("=", col("b"), num(float64(i))), nested)
		}
	}
	if (Mode{}).Unbounded(nested) {
		t.Error("nested AND/OR of key lookups is bounded")
	}
}

func BenchmarkLongChain(b *testing.B) {
	var e *Expr = cmp("=", col("id"), num(0))
	for i := 1; i < 10000; i++ {
		e = or(e, cmp("=", col("id"), num(float64(i))))
	}
	b.ReportAllocs()
	for b.Loop() {
		(Mode{MySQL: true}).Unbounded(e)
	}
}

func TestLiteralFree(t *testing.T) {
	col := &Expr{Kind: Column, Key: "id", Target: true}
	num := func(n float64) *Expr { return &Expr{Kind: Const, Val: Value{Kind: Num, N: n}} }
	cmp := func(a, b *Expr) *Expr { return &Expr{Kind: Cmp, Op: "=", Args: []*Expr{a, b}} }
	for name, tc := range map[string]struct {
		e    *Expr
		want bool
	}{
		"none":          {nil, true},
		"col = 5":       {cmp(col, num(5)), true},
		"col in (1,2)":  {&Expr{Kind: In, Args: []*Expr{col, num(1), num(2)}}, true},
		"1 = 1":         {cmp(num(1), num(1)), false},
		"col = f(5)":    {cmp(col, &Expr{Kind: Func, Op: "abs", Args: []*Expr{num(-5)}}), false},
		"and of bounds": {&Expr{Kind: And, Args: []*Expr{cmp(col, num(1)), cmp(col, num(2))}}, true},
		"or tautology":  {&Expr{Kind: Or, Args: []*Expr{cmp(col, num(1)), cmp(num(1), num(1))}}, false},
		"bare const":    {num(1), false},
	} {
		if got := LiteralFree(tc.e); got != tc.want {
			t.Errorf("%s: LiteralFree = %v, want %v", name, got, tc.want)
		}
	}
}
