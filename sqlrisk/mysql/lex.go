package mysql

// This file is a small MySQL/MariaDB scanner written by hand. The TiDB parser
// has a lexer, but it does not expose token positions, it ignores MariaDB's
// executable comments (/*M!…*/) and it differs from the server on what
// follows "--". Airlock needs exact byte positions for redaction, a
// statement splitter for text the parser rejects, and the server's own
// reading of comments; those three jobs are what this scanner does, nothing
// more. It never decides risk by itself.

// tokKind classifies a token.
type tokKind uint8

const (
	tokWord      tokKind = iota // keyword or unquoted identifier
	tokString                   // '…' (or "…" without ANSI_QUOTES)
	tokQuotedID                 // `…` (or "…" with ANSI_QUOTES)
	tokPunct                    // any other single byte
	tokSemicolon                // statement separator
	tokExecOpen                 // /*!12345 or /*M!123456: the comment's content is code
	tokExecClose                // the */ closing an executable comment
	tokVariable                 // @name, @@name, @'…'
)

// token is one lexical token; comments and spaces are not tokens.
type token struct {
	kind       tokKind
	start, end int
}

// lexMode carries the sql_mode flags that change lexing.
type lexMode struct {
	ansiQuotes         bool
	noBackslashEscapes bool
}

// lexResult is the scan of one text.
type lexResult struct {
	tokens []token
	// err is set when the text ends inside a literal or a comment, which
	// starts at errPos.
	err    bool
	errPos int
	// ambiguous is set when a comment boundary depends on how the reader
	// classifies a byte ("--" followed by a byte that is white space to
	// the TiDB lexer but not to the server).
	ambiguous bool
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 ||
		(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// lex scans text the way the server does.
func lex(text string, m lexMode) lexResult {
	var r lexResult
	inExec := false
	i := 0
	for i < len(text) {
		c := text[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '#':
			i = lineEnd(text, i)
		case c == '-' && i+1 < len(text) && text[i+1] == '-':
			if i+2 == len(text) || text[i+2] <= ' ' || text[i+2] == 0x7f {
				i = lineEnd(text, i)
				continue
			}
			if text[i+2] == 0x85 || text[i+2] == 0xa0 {
				r.ambiguous = true
			}
			r.tokens = append(r.tokens, token{tokPunct, i, i + 1})
			i++
		case c == '/' && i+1 < len(text) && text[i+1] == '*':
			if open, ok := execOpen(text, i); ok && !inExec {
				r.tokens = append(r.tokens, token{tokExecOpen, i, open})
				inExec = true
				i = open
				continue
			}
			end := indexFrom(text, i+2, "*/")
			if end < 0 {
				r.err, r.errPos = true, i
				return r
			}
			i = end + 2
		case c == '*' && inExec && i+1 < len(text) && text[i+1] == '/':
			r.tokens = append(r.tokens, token{tokExecClose, i, i + 2})
			inExec = false
			i += 2
		case c == '\'' || (c == '"' && !m.ansiQuotes):
			end, ok := quoted(text, i, c, !m.noBackslashEscapes)
			if !ok {
				r.err, r.errPos = true, i
				return r
			}
			r.tokens = append(r.tokens, token{tokString, i, end})
			i = end
		case c == '`' || (c == '"' && m.ansiQuotes):
			end, ok := quoted(text, i, c, false)
			if !ok {
				r.err, r.errPos = true, i
				return r
			}
			r.tokens = append(r.tokens, token{tokQuotedID, i, end})
			i = end
		case c == '@':
			j := i + 1
			if j < len(text) && text[j] == '@' {
				j++
			}
			if j < len(text) && (text[j] == '\'' || text[j] == '"' || text[j] == '`') {
				end, ok := quoted(text, j, text[j], !m.noBackslashEscapes && text[j] != '`')
				if !ok {
					r.err, r.errPos = true, i
					return r
				}
				j = end
			} else {
				for j < len(text) && (isWordByte(text[j]) || text[j] == '.') {
					j++
				}
			}
			r.tokens = append(r.tokens, token{tokVariable, i, j})
			i = j
		case c == ';':
			r.tokens = append(r.tokens, token{tokSemicolon, i, i + 1})
			i++
		case isWordByte(c):
			j := i + 1
			for j < len(text) && isWordByte(text[j]) {
				j++
			}
			r.tokens = append(r.tokens, token{tokWord, i, j})
			i = j
		default:
			r.tokens = append(r.tokens, token{tokPunct, i, i + 1})
			i++
		}
	}
	if inExec {
		r.err, r.errPos = true, len(text)
	}
	return r
}

// execOpen recognises /*!, /*!NNNNN, /*M! and /*M!NNNNNN at i and returns
// the offset just after the marker and its version digits.
func execOpen(text string, i int) (int, bool) {
	j := i + 2
	if j < len(text) && text[j] == 'M' && j+1 < len(text) && text[j+1] == '!' {
		j += 2
	} else if j < len(text) && text[j] == '!' {
		j++
	} else {
		return 0, false
	}
	for d := 0; d < 6 && j < len(text) && text[j] >= '0' && text[j] <= '9'; d++ {
		j++
	}
	return j, true
}

func lineEnd(text string, i int) int {
	for i < len(text) && text[i] != '\n' {
		i++
	}
	return i
}

func indexFrom(text string, from int, sub string) int {
	for i := from; i+len(sub) <= len(text); i++ {
		if text[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// quoted returns the offset after the literal opened by q at i. A doubled
// quote stands for itself; with escapes, a backslash escapes the next byte.
func quoted(text string, i int, q byte, escapes bool) (int, bool) {
	j := i + 1
	for j < len(text) {
		switch c := text[j]; {
		case c == '\\' && escapes:
			j += 2
		case c == q:
			if j+1 < len(text) && text[j+1] == q {
				j += 2
				continue
			}
			return j + 1, true
		default:
			j++
		}
	}
	return 0, false
}

// stmtRange is one statement's byte range and its tokens.
type stmtRange struct {
	start, end int
	tokens     []token
}

// split cuts the token stream at semicolons. Empty statements are dropped.
func split(text string, toks []token) []stmtRange {
	var out []stmtRange
	begin := 0
	for i := 0; i <= len(toks); i++ {
		if i < len(toks) && toks[i].kind != tokSemicolon {
			continue
		}
		part := toks[begin:i]
		if hasCode(part) {
			out = append(out, stmtRange{start: part[0].start, end: part[len(part)-1].end, tokens: part})
		}
		begin = i + 1
	}
	return out
}

func hasCode(toks []token) bool {
	for _, t := range toks {
		if t.kind != tokExecOpen && t.kind != tokExecClose {
			return true
		}
	}
	return false
}

// blankExecMarkers returns text with the markers of executable comments
// (/*!50000 and its */) replaced by spaces of the same length, so that the
// parser reads their content as the server does and offsets stay valid.
func blankExecMarkers(text string, toks []token) string {
	var b []byte
	for _, t := range toks {
		if t.kind != tokExecOpen && t.kind != tokExecClose {
			continue
		}
		if b == nil {
			b = []byte(text)
		}
		for k := t.start; k < t.end; k++ {
			b[k] = ' '
		}
	}
	if b == nil {
		return text
	}
	return string(b)
}
