package mysql

import (
	"strconv"
	"strings"
)

// Directives is what a MySQL engine must act on in a command text besides
// its risk: the statements whose effect lies in the session or the wire
// rather than in the data. They are read lexically, with the server's own
// reading of comments and strings, under every sql_mode reading of the text
// (see readings).
type Directives struct {
	// Uses are the databases USE statements switch to, unquoted.
	Uses []string
	// LocalFiles are the file names of LOAD DATA LOCAL INFILE statements,
	// in the order the server runs them: the files the server may ask the
	// client for.
	LocalFiles []string
	// Kills are the KILL statements.
	Kills []Kill
	// Statements is the number of statements, counted only when one of the
	// words USE, LOAD or KILL occurs (0 otherwise).
	Statements int
	// Unsure is set when the text could not be read whole (an unterminated
	// literal or comment) or its readings disagree on a directive: an
	// engine then refuses what depends on the directives.
	Unsure bool
}

// Kill is one KILL statement. OK is false for a form other than
// KILL [HARD|SOFT] [CONNECTION|QUERY] <id>; Query says QUERY.
type Kill struct {
	ID    uint64
	Query bool
	OK    bool
}

// ReadDirectives reads text's directives. It is cheap for the usual text:
// when no word USE, LOAD or KILL occurs, nothing is lexed.
func ReadDirectives(text string) Directives {
	if !hasDirectiveWord(text) {
		return Directives{}
	}
	var out Directives
	for i, m := range readings(text) {
		d := directivesOf(text, m)
		if i == 0 {
			out = d
			continue
		}
		if !sameDirectives(out, d) {
			out.Unsure = true
			out.Uses = append(out.Uses, d.Uses...)
		}
	}
	return out
}

// hasDirectiveWord reports whether USE, LOAD or KILL occurs as a word, in
// any case: a cheap filter before lexing.
func hasDirectiveWord(text string) bool {
	for i := 0; i+3 <= len(text); i++ {
		if i > 0 && isWordByte(text[i-1]) {
			continue
		}
		n := 0
		switch text[i] | 0x20 {
		case 'u':
			n = 3
		case 'l', 'k':
			n = 4
		default:
			continue
		}
		if i+n > len(text) || (i+n < len(text) && isWordByte(text[i+n])) {
			continue
		}
		switch strings.ToUpper(text[i : i+n]) {
		case "USE", "LOAD", "KILL":
			return true
		}
	}
	return false
}

func directivesOf(text string, m lexMode) Directives {
	lx := lex(text, m)
	d := Directives{Unsure: lx.err}
	for _, s := range split(text, lx.tokens) {
		d.Statements++
		words := codeTokens(s.tokens)
		if len(words) == 0 || words[0].kind != tokWord {
			continue
		}
		switch strings.ToUpper(text[words[0].start:words[0].end]) {
		case "USE":
			if len(words) < 2 {
				d.Unsure = true
				continue
			}
			name, ok := identifier(text, words[1])
			d.Uses = append(d.Uses, name)
			d.Unsure = d.Unsure || !ok || len(words) > 2
		case "LOAD":
			if f, local, ok := localInfile(text, words, m); local {
				d.LocalFiles = append(d.LocalFiles, f)
				d.Unsure = d.Unsure || !ok
			}
		case "KILL":
			d.Kills = append(d.Kills, kill(text, words[1:]))
		}
	}
	return d
}

// codeTokens drops the markers of executable comments, whose content is
// code.
func codeTokens(toks []token) []token {
	out := toks[:0:0]
	for _, t := range toks {
		if t.kind != tokExecOpen && t.kind != tokExecClose {
			out = append(out, t)
		}
	}
	return out
}

// identifier returns a database name: a word, or a `quoted` identifier.
func identifier(text string, t token) (string, bool) {
	switch t.kind {
	case tokWord:
		return text[t.start:t.end], true
	case tokQuotedID:
		q := text[t.start]
		body := text[t.start+1 : t.end-1]
		return strings.ReplaceAll(body, string([]byte{q, q}), string(q)), true
	}
	return text[t.start:t.end], false
}

// localInfile reads LOAD DATA|XML [LOW_PRIORITY|CONCURRENT] LOCAL INFILE
// 'name': local says the statement reads a client file, ok that its name
// was read.
func localInfile(text string, words []token, m lexMode) (name string, local, ok bool) {
	for i := 1; i+1 < len(words) && i < 5; i++ {
		w := strings.ToUpper(text[words[i].start:words[i].end])
		if w != "LOCAL" || !strings.EqualFold(text[words[i+1].start:words[i+1].end], "INFILE") {
			continue
		}
		if i+2 >= len(words) || words[i+2].kind != tokString {
			return "", true, false
		}
		f, ok := unquote(text[words[i+2].start:words[i+2].end], !m.noBackslashEscapes)
		return f, true, ok
	}
	return "", false, false
}

// kill reads what follows KILL.
func kill(text string, words []token) Kill {
	var k Kill
	if len(words) > 0 && words[0].kind == tokWord {
		switch strings.ToUpper(text[words[0].start:words[0].end]) {
		case "HARD", "SOFT":
			words = words[1:]
		}
	}
	if len(words) > 0 && words[0].kind == tokWord {
		switch strings.ToUpper(text[words[0].start:words[0].end]) {
		case "QUERY":
			k.Query = true
			words = words[1:]
		case "CONNECTION":
			words = words[1:]
		}
	}
	if len(words) != 1 || words[0].kind != tokWord {
		return k
	}
	id, err := strconv.ParseUint(text[words[0].start:words[0].end], 10, 32)
	k.ID, k.OK = id, err == nil
	return k
}

func sameDirectives(a, b Directives) bool {
	if a.Statements != b.Statements || len(a.Uses) != len(b.Uses) || len(a.LocalFiles) != len(b.LocalFiles) || len(a.Kills) != len(b.Kills) {
		return false
	}
	for i := range a.Uses {
		if a.Uses[i] != b.Uses[i] {
			return false
		}
	}
	for i := range a.LocalFiles {
		if a.LocalFiles[i] != b.LocalFiles[i] {
			return false
		}
	}
	for i := range a.Kills {
		if a.Kills[i] != b.Kills[i] {
			return false
		}
	}
	return true
}
