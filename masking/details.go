package masking

import (
	"bytes"
	"strings"
)

// Database error messages quote column values: a unique violation on a
// column masked by a rule would hand its value to the caller. Text therefore
// also masks, when column rules exist, the values in the message forms that
// carry them:
//
//   - PostgreSQL "Key (col, …)=(value, …)" (unique and foreign key
//     violations): masked when a named column matches a rule;
//   - PostgreSQL "Failing row contains (…)" (not-null and check
//     violations print the whole row, columns unnamed): always masked;
//   - MySQL "Duplicate entry '…' for key '[table.]index'": masked when the
//     index name matches a rule (a one-column unique index is named after
//     its column by default).
//
// The value lists cannot be split reliably (values may hold commas and
// parentheses), so a whole list becomes one "[redacted]".

var (
	pgKey     = []byte("Key (")
	pgKeyEq   = []byte(")=(")
	pgFailing = []byte("Failing row contains (")
	myDup     = []byte("Duplicate entry '")
	myForKey  = []byte("' for key '")
)

// maxDetailNames bounds the column list read after "Key (".
const maxDetailNames = 1024

// detailSpans returns spans merged with the column-rule spans of b's
// database messages.
func (w *worker) detailSpans(b []byte, spans []span) []span {
	e := w.e
	var regions []span
	for k := 0; ; {
		x := bytes.Index(b[k:], pgKey)
		if x < 0 {
			break
		}
		ns := k + x + len(pgKey)
		eq := bytes.Index(b[ns:min(len(b), ns+maxDetailNames)], pgKeyEq)
		if eq < 0 {
			k = ns
			continue
		}
		vs := ns + eq + len(pgKeyEq)
		ve := lineParen(b, vs)
		if ve > vs && e.namesMatch(string(b[ns:ns+eq])) {
			regions = append(regions, span{vs, ve, entColumn})
		}
		k = max(ve, vs)
	}
	for k := 0; ; {
		x := bytes.Index(b[k:], pgFailing)
		if x < 0 {
			break
		}
		vs := k + x + len(pgFailing)
		ve := lineParen(b, vs)
		if ve > vs {
			regions = append(regions, span{vs, ve, entColumn})
		}
		k = max(ve, vs)
	}
	for k := 0; ; {
		x := bytes.Index(b[k:], myDup)
		if x < 0 {
			break
		}
		vs := k + x + len(myDup)
		fk := bytes.Index(b[vs:], myForKey)
		if fk < 0 {
			break
		}
		ks := vs + fk + len(myForKey)
		kl := bytes.IndexByte(b[ks:min(len(b), ks+256)], '\'')
		if kl > 0 {
			key := string(b[ks : ks+kl])
			if dot := strings.LastIndexByte(key, '.'); dot >= 0 {
				key = key[dot+1:]
			}
			if fk > 0 && e.namesMatch(key) {
				regions = append(regions, span{vs, vs + fk, entColumn})
			}
		}
		k = ks
	}
	if len(regions) == 0 {
		return spans
	}
	return mergeSpans(regions, spans)
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

// namesMatch reports whether any column of a comma-separated list matches a
// column rule (table rules by their column: the table is unknown here).
func (e *engine) namesMatch(list string) bool {
	for name := range strings.SplitSeq(strings.ToLower(list), ",") {
		name = strings.Trim(strings.TrimSpace(name), `"`+"`")
		for i := range e.cols {
			r := &e.cols[i]
			if (r.name != "" && matchGlob(r.name, name)) || (r.name == "" && matchGlob(r.table.column, name)) {
				return true
			}
		}
	}
	return false
}

// mergeSpans orders regions (sorted by position) with spans, dropping the
// spans that overlap a region.
func mergeSpans(regions, spans []span) []span {
	sortSpans(regions)
	out := make([]span, 0, len(regions)+len(spans))
	ri := 0
	for _, sp := range spans {
		for ri < len(regions) && regions[ri].end <= sp.start {
			out = appendRegion(out, regions[ri])
			ri++
		}
		if ri < len(regions) && regions[ri].start < sp.end {
			continue // inside or across a region
		}
		if n := len(out); n > 0 && out[n-1].end > sp.start {
			continue
		}
		out = append(out, sp)
	}
	for ; ri < len(regions); ri++ {
		out = appendRegion(out, regions[ri])
	}
	return out
}

func appendRegion(out []span, r span) []span {
	if n := len(out); n > 0 && out[n-1].end > r.start {
		if out[n-1].ent != entColumn { // a span reaching into the region
			out[n-1].ent, out[n-1].end = entColumn, max(out[n-1].end, r.end)
			return out
		}
		out[n-1].end = max(out[n-1].end, r.end)
		return out
	}
	return append(out, r)
}

func sortSpans(s []span) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].start < s[j-1].start; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
