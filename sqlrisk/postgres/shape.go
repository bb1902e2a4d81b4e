package postgres

// Shape returns text with every numeric literal replaced by a control byte
// (which no accepted text contains, so a shape never collides with real
// text): 0x00 for an integer that fits 32 bits and 0x01 for any other
// number, because PostgreSQL's grammar accepts only the former in places
// such as timestamp(3). Statements that differ only in numbers of the same
// class (pgbench, ORMs that inline ids) thus share a cache entry. It is
// written by hand, not with pg_query's scanner, because it must cost far
// less than the parse it saves. It is strict: ok is false for anything it
// does not read with certainty (backslashes in strings, escape or Unicode
// strings, dollar quoting, non-ASCII, unclosed quotes or comments), and
// then only the exact text is cached. Outside numeric literals the text is
// kept byte for byte: strings, identifiers, comments and whitespace are part
// of the shape.
func Shape(text string) (string, bool) {
	if len(text) > 16<<10 {
		return "", false
	}
	out := make([]byte, 0, len(text))
	changed := false
	i := 0
	for i < len(text) {
		c := text[i]
		switch {
		case c >= 0x80 || c == 0 || c == '\\':
			return "", false
		case c == '$':
			// Only $n parameters; a dollar quote's body is not read here.
			j := i + 1
			for j < len(text) && isDigit(text[j]) {
				j++
			}
			if j == i+1 {
				return "", false
			}
			out = append(out, text[i:j]...)
			i = j
		case c == '\'':
			if i > 0 && (text[i-1] == 'e' || text[i-1] == 'E' || text[i-1] == '&') {
				return "", false // E'...' escapes, U&'...' Unicode escapes
			}
			j, ok := closeQuote(text, i, '\'')
			if !ok {
				return "", false
			}
			out = append(out, text[i:j]...)
			i = j
		case c == '"':
			j, ok := closeQuote(text, i, '"')
			if !ok {
				return "", false
			}
			out = append(out, text[i:j]...)
			i = j
		case c == '-' && i+1 < len(text) && text[i+1] == '-':
			j := i
			for j < len(text) && text[j] != '\n' && text[j] != '\r' {
				j++
			}
			out = append(out, text[i:j]...)
			i = j
		case c == '/' && i+1 < len(text) && text[i+1] == '*':
			j, ok := closeComment(text, i)
			if !ok {
				return "", false
			}
			out = append(out, text[i:j]...)
			i = j
		case isIdentStart(c):
			j := i + 1
			for j < len(text) && isIdentCont(text[j]) {
				j++
			}
			out = append(out, text[i:j]...)
			i = j
		case isDigit(c) || c == '.' && i+1 < len(text) && isDigit(text[i+1]):
			j, ok := numberEnd(text, i)
			if !ok {
				return "", false
			}
			out = append(out, numberClass(text[i:j]))
			changed = true
			i = j
		default:
			out = append(out, c)
			i++
		}
	}
	if !changed {
		return "", false
	}
	return string(out), true
}

// closeQuote returns the index after the quote closing the one at i, with
// doubled quotes inside.
func closeQuote(text string, i int, q byte) (int, bool) {
	for j := i + 1; j < len(text); j++ {
		switch text[j] {
		case q:
			if j+1 < len(text) && text[j+1] == q {
				j++
				continue
			}
			return j + 1, true
		case '\\':
			return 0, false
		}
	}
	return 0, false
}

// closeComment returns the index after the (nested) block comment at i.
func closeComment(text string, i int) (int, bool) {
	depth := 0
	for j := i; j+1 < len(text); j++ {
		switch {
		case text[j] == '/' && text[j+1] == '*':
			depth++
			j++
		case text[j] == '*' && text[j+1] == '/':
			depth--
			j++
			if depth == 0 {
				return j + 1, true
			}
		}
	}
	return 0, false
}

// numberEnd reads a decimal literal (digits, a fraction, an exponent) and
// refuses anything PostgreSQL might read otherwise: hex, octal and binary
// prefixes, underscores, or a letter right after the number.
func numberEnd(text string, i int) (int, bool) {
	j := i
	digits := func() {
		for j < len(text) && isDigit(text[j]) {
			j++
		}
	}
	digits()
	if j < len(text) && text[j] == '.' {
		if j+1 < len(text) && text[j+1] == '.' {
			return j, true // 1..2 is not ours to judge, but the number ends
		}
		j++
		digits()
	}
	if j < len(text) && (text[j] == 'e' || text[j] == 'E') {
		k := j + 1
		if k < len(text) && (text[k] == '+' || text[k] == '-') {
			k++
		}
		if k < len(text) && isDigit(text[k]) {
			j = k
			digits()
		} else {
			return 0, false
		}
	}
	if j < len(text) && (isIdentCont(text[j]) || text[j] == '.' || text[j] == '$') {
		return 0, false
	}
	return j, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// numberClass is 0 for a decimal integer PostgreSQL's lexer reads as an
// integer constant (it fits in 32 bits), 1 for every other number.
func numberClass(lit string) byte {
	if len(lit) > 10 {
		return 1
	}
	n := 0
	for i := 0; i < len(lit); i++ {
		if !isDigit(lit[i]) {
			return 1
		}
		n = n*10 + int(lit[i]-'0')
	}
	if n > 1<<31-1 {
		return 1
	}
	return 0
}
