package mysql

import (
	"fmt"
	"strings"
	"sync"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	pmysql "github.com/pingcap/tidb/pkg/parser/mysql"
	// The parser needs a driver for literal values.
	_ "github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/sqlrisk/internal/redact"
	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

// maxNest bounds recursive analysis of SQL held in literals (PREPARE FROM
// '…', EXECUTE IMMEDIATE '…').
const maxNest = 6

// Analyzer classifies MySQL and MariaDB command text. It is safe for
// concurrent use: TiDB parsers are not, so each analysis takes one from a
// pool.
type Analyzer struct {
	parsers sync.Pool
}

// New returns a MySQL/MariaDB analyzer.
func New() *Analyzer {
	a := &Analyzer{}
	a.parsers.New = func() any { return parser.New() }
	return a
}

// Analyze classifies cmd.Text (a COM_QUERY or COM_STMT_PREPARE text, any
// number of statements).
func (a *Analyzer) Analyze(cmd *protocols.Command) *protocols.Classification {
	return a.Text(cmd.Text)
}

// readings lists the sql_mode lexings the text can have: the default one,
// and when the text holds a backslash or a double quote, those of a session
// running with NO_BACKSLASH_ESCAPES or ANSI_QUOTES, which can move literal
// and statement boundaries. Airlock does not know the session's sql_mode,
// so it classifies every reading and keeps the worst.
func readings(text string) []lexMode {
	modes := []lexMode{{}}
	bs, dq := strings.IndexByte(text, '\\') >= 0, strings.IndexByte(text, '"') >= 0
	if bs {
		modes = append(modes, lexMode{noBackslashEscapes: true})
	}
	if dq {
		modes = append(modes, lexMode{ansiQuotes: true})
	}
	if bs && dq {
		modes = append(modes, lexMode{ansiQuotes: true, noBackslashEscapes: true})
	}
	return modes
}

// Text classifies SQL text.
func (a *Analyzer) Text(text string) *protocols.Classification {
	var b rule.Builder
	var spans []redact.Span
	for i, m := range readings(text) {
		if i == 0 {
			spans = a.read(text, m, &b, 0, true)
			continue
		}
		var ab rule.Builder
		// Only this reading's secrets, not its conservative redaction of
		// what it cannot lex: a benign text often fails in another mode.
		spans = append(spans, a.readSecrets(text, m, &ab)...)
		for _, id := range ab.Rules() {
			// A reading the parser rejects is one the server rejects
			// too; only what it would run counts.
			if id != rule.ParseError {
				b.Hit(id)
			}
		}
	}
	return b.Classification(redact.Apply(text, spans, redact.Mask))
}

// readSecrets classifies an alternative reading of text and returns only
// the spans its secret-bearing statements ask to redact.
func (a *Analyzer) readSecrets(text string, m lexMode, b *rule.Builder) []redact.Span {
	var keep []redact.Span
	a.readInto(text, m, b, 0, false, &keep, nil)
	return keep
}

// read classifies text lexed in mode m into b and returns the spans to
// redact. top says whether statements and tables are recorded.
func (a *Analyzer) read(text string, m lexMode, b *rule.Builder, nest int, top bool) []redact.Span {
	var spans []redact.Span
	a.readInto(text, m, b, nest, top, &spans, &spans)
	return spans
}

// readInto does the work of read: secret spans (statements that carry
// credentials) go to secret, spans redacted only because the text could not
// be analysed go to unparsed (nil: dropped).
func (a *Analyzer) readInto(text string, m lexMode, b *rule.Builder, nest int, top bool, secret, unparsed *[]redact.Span) {
	add := func(dst *[]redact.Span, s ...redact.Span) {
		if dst != nil {
			*dst = append(*dst, s...)
		}
	}
	lx := lex(text, m)
	if lx.ambiguous {
		b.Hit(rule.ParseError)
	}
	stmts := split(text, lx.tokens)
	clean := blankExecMarkers(text, lx.tokens)
	add(secret, secretSpans(text, stmts)...)
	if lx.err {
		b.Hit(rule.ParseError)
		add(unparsed, stringSpans(lx.tokens)...)
		add(unparsed, redact.Span{Start: lx.errPos, End: len(text)})
	}
	w := &walker{a: a, b: b, mode: m, nest: nest, top: top}
	if tooDeep(text, lx.tokens) {
		// Refuse to build the tree; the leading keywords still count.
		b.Hit(rule.ParseError)
		for _, s := range stmts {
			if w.fallback(text, s) {
				add(secret, stringSpans(s.tokens)...)
			}
			add(unparsed, stringSpans(s.tokens)...)
		}
		return
	}
	if !lx.err && a.readWhole(text, clean, m, w, stmts, lx.tokens, secret) {
		return
	}
	// Parse statement by statement: the server runs a multi-statement
	// text one statement at a time, so what precedes a statement the
	// parser rejects still runs.
	for _, s := range stmts {
		if a.readOne(text, clean, m, w, s, secret) {
			continue
		}
		if w.knownSimple(text, s) {
			continue
		}
		b.Hit(rule.ParseError)
		if w.fallback(text, s) {
			add(secret, stringSpans(s.tokens)...)
		}
		add(unparsed, stringSpans(s.tokens)...)
	}
}

// readWhole parses the whole text at once and walks it; false when the
// parser rejects it.
func (a *Analyzer) readWhole(text, clean string, m lexMode, w *walker, stmts []stmtRange, toks []token, secret *[]redact.Span) bool {
	nodes, release, err := a.parse(clean, m)
	if err != nil {
		return false
	}
	// The parser reuses its node memory: walk before giving it back.
	defer release()
	if len(nodes) != len(stmts) {
		// The parser and the splitter disagree on boundaries (a compound
		// statement with ; inside): the parse tree is authoritative,
		// secrets are judged on the whole text.
		if w.walkAll(nodes) && secret != nil {
			*secret = append(*secret, stringSpans(toks)...)
		}
		return true
	}
	for i, n := range nodes {
		if w.walk(n) && secret != nil {
			*secret = append(*secret, stringSpans(stmts[i].tokens)...)
		}
	}
	return true
}

// readOne parses and walks one statement; false when the parser rejects it.
func (a *Analyzer) readOne(text, clean string, m lexMode, w *walker, s stmtRange, secret *[]redact.Span) bool {
	nodes, release, err := a.parse(clean[s.start:s.end], m)
	if err != nil {
		// The TiDB grammar lacks SELECT … INTO @var; the variables are
		// session state only, so read the statement without them.
		if alt, ok := withoutIntoVars(clean, s); ok {
			nodes, release, err = a.parse(alt, m)
		}
	}
	if err != nil {
		return false
	}
	defer release()
	if len(nodes) == 0 {
		return false
	}
	if w.walkAll(nodes) && secret != nil {
		*secret = append(*secret, stringSpans(s.tokens)...)
	}
	return true
}

// parse runs the TiDB parser in mode m. The nodes stay valid until release
// is called: the parser reuses their memory for its next parse. A panic
// inside the parser is an error (fail closed) and that parser is dropped.
func (a *Analyzer) parse(sql string, m lexMode) (nodes []ast.StmtNode, release func(), err error) {
	p := a.parsers.Get().(*parser.Parser)
	defer func() {
		if r := recover(); r != nil {
			nodes, release, err = nil, nil, fmt.Errorf("parser panic: %v", r)
		}
	}()
	var mode pmysql.SQLMode
	if m.ansiQuotes {
		mode |= pmysql.ModeANSIQuotes
	}
	if m.noBackslashEscapes {
		mode |= pmysql.ModeNoBackslashEscapes
	}
	p.SetSQLMode(mode)
	nodes, _, err = p.Parse(sql, "", "")
	if err != nil {
		a.parsers.Put(p)
		return nil, nil, err
	}
	return nodes, func() { a.parsers.Put(p) }, nil
}

// withoutIntoVars returns the statement with "INTO @a, @b" blanked out.
func withoutIntoVars(text string, s stmtRange) (string, bool) {
	for i, t := range s.tokens {
		if t.kind != tokWord || !strings.EqualFold(text[t.start:t.end], "INTO") {
			continue
		}
		j := i + 1
		for j < len(s.tokens) && s.tokens[j].kind == tokVariable {
			j++
			if j < len(s.tokens) && s.tokens[j].kind == tokPunct && text[s.tokens[j].start] == ',' {
				j++
				continue
			}
			break
		}
		if j == i+1 || s.tokens[j-1].kind != tokVariable {
			continue
		}
		b := []byte(text[s.start:s.end])
		for k := t.start; k < s.tokens[j-1].end; k++ {
			b[k-s.start] = ' '
		}
		return string(b), true
	}
	return "", false
}

// nested classifies SQL held in a literal and merges its rules; it reports
// whether the SQL carries secrets.
func (w *walker) nested(sql string) bool {
	if w.nest >= maxNest {
		return false
	}
	var nb rule.Builder
	spans := w.a.read(sql, w.mode, &nb, w.nest+1, false)
	for _, id := range nb.Rules() {
		w.b.Hit(id)
	}
	return len(spans) > 0
}

// secretWords make every string literal of their statement a secret.
var secretWords = map[string]bool{
	"IDENTIFIED": true, "PASSWORD": true, "MASTER_PASSWORD": true, "SOURCE_PASSWORD": true,
	"AES_ENCRYPT": true, "AES_DECRYPT": true, "DES_ENCRYPT": true, "DES_DECRYPT": true,
	"ENCODE": true, "DECODE": true, "ENCRYPT": true,
}

// secretSpans finds the literals to redact by token: all literals of a
// statement with a secret word, and any literal whose content is a
// credential.
func secretSpans(text string, stmts []stmtRange) []redact.Span {
	var out []redact.Span
	for _, s := range stmts {
		all := false
		for _, t := range s.tokens {
			if t.kind == tokWord && secretWords[strings.ToUpper(text[t.start:t.end])] {
				all = true
				break
			}
		}
		for _, t := range s.tokens {
			if t.kind == tokString && (all || redact.SecretLiteral(text[t.start:t.end])) {
				out = append(out, redact.Span{Start: t.start, End: t.end})
			}
		}
	}
	return out
}

func stringSpans(toks []token) []redact.Span {
	var out []redact.Span
	for _, t := range toks {
		if t.kind == tokString {
			out = append(out, redact.Span{Start: t.start, End: t.end})
		}
	}
	return out
}
