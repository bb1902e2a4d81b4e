package postgres

import (
	pg "github.com/pganalyze/pg_query_go/v6"
)

// maxChain bounds the estimated depth of a parse tree before pg_query sees
// the text. Left-recursive constructs (a + a + a …, x::t::t …, SELECT …
// UNION SELECT … UNION …) are reduced by the grammar without growing its
// stack, so their depth is unbounded, and pg_query's C code walks the tree
// recursively: a chain of ~24,000 operators overflows an 8 MB thread stack
// and kills the process, which no recover() can catch. Trees deeper than
// ~5,000 levels are refused by protobuf decoding anyway, so refusing an
// estimate above this bound loses nothing a server would accept in practice.
const maxChain = 3000

// shortText is below the size any chain longer than maxChain needs (each
// link takes at least two bytes), so shorter texts skip the estimate.
const shortText = 2 * maxChain

// chainTokens extend a left-recursive chain in PostgreSQL's grammar.
var chainTokens = map[pg.Token]bool{
	pg.Token_Op: true, pg.Token_ASCII_43: true, pg.Token_ASCII_45: true, pg.Token_ASCII_42: true,
	pg.Token_ASCII_47: true, pg.Token_ASCII_37: true, pg.Token_ASCII_94: true, pg.Token_ASCII_60: true,
	pg.Token_ASCII_62: true, pg.Token_ASCII_61: true, pg.Token_LESS_EQUALS: true,
	pg.Token_GREATER_EQUALS: true, pg.Token_NOT_EQUALS: true, pg.Token_TYPECAST: true,
	pg.Token_COLLATE: true, pg.Token_AT: true, pg.Token_IS: true, pg.Token_ISNULL: true,
	pg.Token_NOTNULL: true, pg.Token_LIKE: true, pg.Token_ILIKE: true, pg.Token_SIMILAR: true,
	pg.Token_BETWEEN: true, pg.Token_IN_P: true, pg.Token_OPERATOR: true, pg.Token_NOT: true,
	pg.Token_ASCII_91: true, // [ subscripts
}

// setTokens chain whole queries.
var setTokens = map[pg.Token]bool{pg.Token_UNION: true, pg.Token_INTERSECT: true, pg.Token_EXCEPT: true}

// resetTokens start a new operand whose depth does not add to the previous
// one: list elements, flattened AND/OR operands, CASE branches, statements.
var resetTokens = map[pg.Token]bool{
	pg.Token_ASCII_44: true, pg.Token_AND: true, pg.Token_OR: true, pg.Token_WHEN: true,
	pg.Token_THEN: true, pg.Token_ELSE: true, pg.Token_ASCII_59: true,
}

// tooDeep reports whether text may produce a parse tree deeper than
// pg_query can safely walk. It scans (iteratively, no recursion) and keeps,
// per parenthesis level, the length of the current operator chain and of
// the set-operation chain; the estimate is their sum over the open levels.
func tooDeep(text string) bool {
	if len(text) < shortText {
		return false
	}
	scan, err := pg.Scan(text)
	if err != nil {
		return false // the parser will reject it without building a tree
	}
	type level struct{ expr, set int }
	stack := []level{{}}
	sum := 0 // sum of expr+set over the stack, kept incrementally
	for _, t := range scan.Tokens {
		top := &stack[len(stack)-1]
		switch {
		case t.Token == pg.Token_ASCII_40: // (
			stack = append(stack, level{})
		case t.Token == pg.Token_ASCII_41: // )
			if len(stack) > 1 {
				sum -= top.expr + top.set
				stack = stack[:len(stack)-1]
			}
		case t.Token == pg.Token_ASCII_59: // ; ends the statement
			stack, sum = []level{{}}, 0
		case resetTokens[t.Token]:
			sum -= top.expr
			top.expr = 0
		case chainTokens[t.Token]:
			top.expr++
			sum++
		case setTokens[t.Token]:
			top.set++
			sum++
		}
		if sum+len(stack) > maxChain {
			return true
		}
	}
	return false
}

// parse is pg.Parse behind the depth guard.
func parse(text string) (*pg.ParseResult, error) {
	if tooDeep(text) {
		return nil, errTooDeep
	}
	return pg.Parse(text)
}
