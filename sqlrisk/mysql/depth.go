package mysql

import "strings"

// maxChain bounds the estimated depth of a statement's syntax tree. The
// TiDB grammar builds left-deep trees for operator chains (a OR b OR c …,
// 1+1+1 …) and the AST visitor walks them recursively; a packet of tens of
// megabytes of such a chain would take the goroutine past Go's stack limit,
// a fatal error no recover() catches. Legitimate statements stay far below:
// an ORM's "id = 1 OR id = 2 …" of ten thousand terms is 20,000 deep.
const maxChain = 50000

var chainWords = map[string]bool{
	"AND": true, "OR": true, "XOR": true, "NOT": true, "IS": true, "LIKE": true, "REGEXP": true,
	"RLIKE": true, "BETWEEN": true, "IN": true, "DIV": true, "MOD": true, "COLLATE": true,
	"UNION": true, "EXCEPT": true, "INTERSECT": true, "SOUNDS": true, "ESCAPE": true,
}

// tooDeep estimates, per parenthesis level, the length of the operator
// chain being built and reports whether the sum over the open levels
// exceeds maxChain.
func tooDeep(text string, toks []token) bool {
	if len(text) < maxChain {
		return false
	}
	stack := []int{0}
	sum := 0
	for _, t := range toks {
		switch t.kind {
		case tokSemicolon:
			stack, sum = stack[:1], 0
			stack[0] = 0
		case tokPunct:
			switch c := text[t.start]; c {
			case '(':
				stack = append(stack, 0)
			case ')':
				if len(stack) > 1 {
					sum -= stack[len(stack)-1]
					stack = stack[:len(stack)-1]
				}
			case ',':
				sum -= stack[len(stack)-1]
				stack[len(stack)-1] = 0
			case '+', '-', '*', '/', '%', '^', '&', '|', '<', '>', '=', '!', '~':
				stack[len(stack)-1]++
				sum++
			}
		case tokWord:
			if t.end-t.start <= 9 && chainWords[strings.ToUpper(text[t.start:t.end])] {
				stack[len(stack)-1]++
				sum++
			}
		}
		if sum+len(stack) > maxChain {
			return true
		}
	}
	return false
}
