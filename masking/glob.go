package masking

// matchGlob reports whether name matches pattern, where '*' matches any run
// of bytes (including none) and '?' exactly one. Both are already lower
// case. It is written here rather than taken from path.Match because a
// column name may contain '/', which path.Match's '*' never crosses: a
// "*password*" rule must not miss a column called "old/password".
// The single-star backtracking keeps it linear in practice and O(n*m) at
// worst for the short strings of column names.
func matchGlob(pattern, name string) bool {
	p, n := 0, 0
	star, mark := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == name[n]):
			p++
			n++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case star >= 0:
			p = star + 1
			mark++
			n = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
