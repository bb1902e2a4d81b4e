// Package kindname turns parser type names into the statement kinds sqlrisk
// reports, the same way for every dialect.
package kindname

import (
	"strings"
	"unicode"
)

// Snake converts a Go-style type name to snake case: "CreateForeignServer"
// becomes "create_foreign_server", "AlterTSDictionary" "alter_ts_dictionary".
func Snake(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 && (unicode.IsLower(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]) && unicode.IsUpper(rs[i-1]))) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
