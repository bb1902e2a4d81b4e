package postgres

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

// maxNest bounds how deep bodies are analysed recursively (a DO block that
// EXECUTEs a literal that creates a function whose body …). Past it the
// outer construct's own rule (code.dynamic, code.define) still applies.
const maxNest = 6

// maxDepth bounds the parse-tree depth the walker follows; a deeper tree is
// reported as parse.error rather than risking the stack.
const maxDepth = 5000

// Analyzer classifies PostgreSQL command text. It is stateless and safe for
// concurrent use (pg_query keeps its parser state per thread).
type Analyzer struct{}

// New returns a PostgreSQL analyzer.
func New() *Analyzer { return &Analyzer{} }

// Analyze classifies cmd.Text, one simple-query string of any number of
// statements, or the text of one extended-protocol Parse message.
func (a *Analyzer) Analyze(cmd *protocols.Command) *protocols.Classification {
	return a.Text(cmd.Text)
}

// Text classifies SQL text.
func (a *Analyzer) Text(text string) *protocols.Classification {
	if strings.IndexByte(text, 0) >= 0 {
		// The server stops reading a query at NUL; pg_query would too, but
		// a proxy must not guess which part the upstream sees.
		return rule.Failure(rule.ParseError, redactUnparsed(text))
	}
	res, err := pg.Parse(text)
	if err != nil {
		return rule.Failure(rule.ParseError, redactUnparsed(text))
	}
	var b rule.Builder
	w := newWalker(&b, text, 0, true)
	for _, raw := range res.Stmts {
		w.statement(raw)
	}
	secretAll := false
	// With standard_conforming_strings off (a session SET or an old server
	// default) backslashes escape quotes in '…' literals, which can move
	// statement boundaries. Read the text that way too; the worse wins.
	if alt, ok := escapeStringVariant(text); ok {
		if altRes, err := pg.Parse(alt); err == nil {
			var ab rule.Builder
			aw := newWalker(&ab, alt, 0, false)
			for _, raw := range altRes.Stmts {
				aw.statement(raw)
			}
			for _, id := range ab.Rules() {
				b.Hit(id)
			}
			secretAll = len(aw.secretSpans) > 0
		}
	}
	return b.Classification(w.redact(secretAll))
}

// nested analyses SQL text found inside the statement being walked (a
// function body, a PREPARE'd literal, the query argument of query_to_xml):
// its rules count for the outer statement, its tables do not.
func (w *walker) nested(sql string) bool {
	if w.nest >= maxNest || strings.IndexByte(sql, 0) >= 0 {
		return false
	}
	res, err := pg.Parse(sql)
	if err != nil {
		return false
	}
	var nb rule.Builder
	nw := newWalker(&nb, sql, w.nest+1, false)
	for _, raw := range res.Stmts {
		nw.statement(raw)
	}
	for _, id := range nb.Rules() {
		w.effectAlways(id)
	}
	if len(nw.secretSpans) > 0 {
		w.markSecret()
	}
	return true
}

// escapeStringVariant rewrites text so that pg_query, which always parses
// with standard_conforming_strings on, lexes it as a server with the setting
// off would: each plain '…' literal that contains a backslash becomes an
// E'…' literal, left to right, re-scanning after each change because the
// change can move every later token. ok is false when nothing changes.
func escapeStringVariant(text string) (string, bool) {
	if strings.IndexByte(text, '\\') < 0 {
		return "", false
	}
	changed := false
	for range 64 {
		scan, err := pg.Scan(text)
		if err != nil {
			break
		}
		found := false
		for _, t := range scan.Tokens {
			if t.Token != pg.Token_SCONST {
				continue
			}
			lit := text[t.Start:t.End]
			if len(lit) < 2 || strings.IndexByte(lit, '\\') < 0 {
				continue
			}
			switch lit[0] {
			case '\'':
				text = text[:t.Start] + "E" + text[t.Start:]
			case 'n', 'N':
				text = text[:t.Start] + "E" + text[t.Start+1:]
			default:
				continue // E'…', $$…$$: already read the same both ways
			}
			found, changed = true, true
			break
		}
		if !found {
			break
		}
	}
	return text, changed
}
