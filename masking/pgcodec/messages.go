package pgcodec

import (
	"bytes"

	"github.com/airlock-gw/airlock/masking"
)

// PostgreSQL's error details quote column values in two forms
// (BuildIndexValueDescription for unique and exclusion violations,
// ri_ReportViolation for foreign keys, ExecConstraints for the rest):
//
//   - "Key (col, …)=(value, …)" (unique and foreign key violations): the
//     columns are named, so the values are masked when one matches a rule;
//   - "Failing row contains (…)" (not-null and check violations print the
//     whole row, columns unnamed): always masked while column rules apply.

var (
	keyOpen    = []byte("Key (")
	keyEquals  = []byte(")=(")
	failingRow = []byte("Failing row contains (")
)

// maxDetailNames bounds the column list read after "Key (".
const maxDetailNames = 1024

// AppendQuotes appends the value lists of msg's "Key (…)=(…)" and
// "Failing row contains (…)" details.
func (Dialect) AppendQuotes(dst []masking.Quote, msg []byte) []masking.Quote {
	b := msg
	for k := 0; ; {
		x := bytes.Index(b[k:], keyOpen)
		if x < 0 {
			break
		}
		ns := k + x + len(keyOpen)
		eq := bytes.Index(b[ns:min(len(b), ns+maxDetailNames)], keyEquals)
		if eq < 0 {
			k = ns
			continue
		}
		vs := ns + eq + len(keyEquals)
		ve := lineParen(b, vs)
		if ve > vs {
			dst = append(dst, masking.Quote{Start: vs, End: ve, Columns: string(b[ns : ns+eq])})
		}
		k = max(ve, vs)
	}
	for k := 0; ; {
		x := bytes.Index(b[k:], failingRow)
		if x < 0 {
			break
		}
		vs := k + x + len(failingRow)
		ve := lineParen(b, vs)
		if ve > vs {
			dst = append(dst, masking.Quote{Start: vs, End: ve, Row: true})
		}
		k = max(ve, vs)
	}
	return dst
}

// lineParen returns the index of the last ')' on the line starting at i, or
// i when there is none.
func lineParen(b []byte, i int) int {
	end := len(b)
	if nl := bytes.IndexByte(b[i:], '\n'); nl >= 0 {
		end = i + nl
	}
	if p := bytes.LastIndexByte(b[i:end], ')'); p >= 0 {
		return i + p
	}
	return i
}
