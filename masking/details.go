package masking

import "strings"

// Database error messages quote column values: a unique violation on a
// column masked by a rule would hand its value to the caller. Text
// therefore also masks, when column rules exist, the values the dialect
// finds quoted in a message (Dialect.AppendQuotes): those of named columns
// when one of them matches a rule, a whole unnamed row always. The value
// lists cannot be split reliably (values may hold commas and parentheses),
// so a whole list becomes one "[redacted]".

// detailSpans returns spans merged with the column-rule spans of b's
// database messages.
func (w *worker) detailSpans(b []byte, spans []span) []span {
	e := w.e
	w.quotes = e.dialect.AppendQuotes(w.quotes[:0], b)
	var regions []span
	for _, q := range w.quotes {
		if q.Start < 0 || q.End > len(b) || q.Start >= q.End {
			continue
		}
		if q.Row || e.namesMatch(q.Columns) {
			regions = append(regions, span{q.Start, q.End, entColumn})
		}
	}
	clear(w.quotes) // the pooled worker keeps no text of the message
	if len(regions) == 0 {
		return spans
	}
	return mergeSpans(regions, spans)
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
