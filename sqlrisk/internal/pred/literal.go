package pred

// LiteralFree reports whether judging where cannot depend on the values of
// its numeric literals: every constant stands alone against bare columns
// (id = 5, id IN (1, 2, 3)). A constant anywhere else (1 = 1, id + 1 =
// id + 2, abs(-5) = id) may be folded or compared by the evaluator, so two
// conditions of the same shape could be judged differently. The shape
// cache of sqlrisk reuses a judgement only for literal-free conditions.
func LiteralFree(where *Expr) bool {
	if where == nil {
		return true
	}
	switch where.Kind {
	case Const:
		return false
	case Column:
		return true
	case Cmp, In:
		cols, consts := 0, 0
		for _, a := range where.Args {
			switch {
			case a == nil:
				return false
			case a.Kind == Column:
				cols++
			case a.Kind == Const:
				consts++
			default:
				if !LiteralFree(a) {
					return false
				}
			}
		}
		return consts == 0 || cols > 0 && cols+consts == len(where.Args)
	}
	for _, a := range where.Args {
		if a == nil || !LiteralFree(a) {
			return false
		}
	}
	return true
}
