package postgres

import (
	"errors"
	"strings"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

// errTooDeep refuses text whose parse tree could exhaust the C stack.
var errTooDeep = errors.New("statement nested too deeply to analyse safely")

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
	c, _ := a.text(text)
	return c
}

// Shape is the package's Shape: text with numeric literals replaced.
func (a *Analyzer) Shape(text string) (string, bool) { return Shape(text) }

// AnalyzeShaped classifies cmd like Analyze and also reports whether the
// result holds for every text of the same Shape: true only for plain DML
// whose judgement read no literal value, parsed one way, and carried no
// secret.
func (a *Analyzer) AnalyzeShaped(cmd *protocols.Command) (*protocols.Classification, bool) {
	return a.text(cmd.Text)
}

func (a *Analyzer) text(text string) (*protocols.Classification, bool) {
	if strings.IndexByte(text, 0) >= 0 {
		// The server stops reading a query at NUL; pg_query would too, but
		// a proxy must not guess which part the upstream sees.
		return rule.Failure(rule.ParseError, redactUnparsed(text)), false
	}
	var b rule.Builder
	w := newWalker(&b, text, 0, true)
	res, err := parse(text)
	if err != nil {
		b.Hit(rule.ParseError)
	} else {
		for _, raw := range res.Stmts {
			w.statement(raw)
		}
	}
	secretAll := err != nil
	variant := false
	// With standard_conforming_strings off (a session SET or an old server
	// default) backslashes escape quotes in '…' literals, which can move
	// statement boundaries. Read the text that way too; the worse wins.
	// This holds even when the standard reading does not parse: the other
	// reading may.
	if alt, ok := escapeStringVariant(text); ok {
		variant = true
		if altRes, err := parse(alt); err == nil {
			var ab rule.Builder
			aw := newWalker(&ab, alt, 0, false)
			for _, raw := range altRes.Stmts {
				aw.statement(raw)
			}
			for _, id := range ab.Rules() {
				b.Hit(id)
			}
			secretAll = secretAll || len(aw.secretSpans) > 0
		}
	}
	if err != nil {
		return b.Classification(redactUnparsed(text)), false
	}
	c := b.Classification(w.redact(secretAll))
	return c, !variant && !w.literal && !w.notDML && c.Redacted == text
}

// nested analyses SQL text found inside the statement being walked (a
// function body, a PREPARE'd literal, the query argument of query_to_xml):
// its rules count for the outer statement, its tables do not.
func (w *walker) nested(sql string) bool {
	if w.nest >= maxNest || strings.IndexByte(sql, 0) >= 0 {
		return false
	}
	res, err := parse(sql)
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
