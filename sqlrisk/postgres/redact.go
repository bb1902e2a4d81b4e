package postgres

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/airlock-gw/airlock/sqlrisk/internal/redact"
)

// secretHints are words without which no literal of a parsed command is
// redacted by content; they spare the scanner on ordinary statements.
var secretHints = []string{"pass", "pwd", "secret", "://"}

func mayHoldSecret(text string) bool {
	lower := strings.ToLower(text)
	for _, h := range secretHints {
		if strings.Contains(lower, h) {
			return true
		}
	}
	return false
}

// redact returns the walked text with secrets replaced: every string
// literal of a statement that carries credentials (CREATE/ALTER ROLE,
// user mappings, servers, subscriptions), and any literal whose content is a
// credential (a dblink connection string with password=, a URI with a
// password). all redacts every literal of the text.
func (w *walker) redact(all bool) string {
	if !all && len(w.secretSpans) == 0 && !mayHoldSecret(w.text) {
		return w.text
	}
	scan, err := pg.Scan(w.text)
	if err != nil {
		return redactUnparsed(w.text)
	}
	var spans []redact.Span
	for _, t := range scan.Tokens {
		if t.Token != pg.Token_SCONST && t.Token != pg.Token_USCONST {
			continue
		}
		start, end := int(t.Start), int(t.End)
		if all || inSpans(w.secretSpans, start) || redact.SecretLiteral(w.text[start:end]) {
			spans = append(spans, redact.Span{Start: start, End: end})
		}
	}
	return redact.Apply(w.text, spans, redact.Mask)
}

func inSpans(spans []redact.Span, pos int) bool {
	for _, s := range spans {
		if pos >= s.Start && pos < s.End {
			return true
		}
	}
	return false
}

// redactUnparsed redacts text the parser rejected: every string literal the
// scanner finds, and when even the scanner fails (an unterminated literal),
// everything from the first quote on.
func redactUnparsed(text string) string {
	if strings.IndexByte(text, 0) < 0 {
		if scan, err := pg.Scan(text); err == nil {
			var spans []redact.Span
			for _, t := range scan.Tokens {
				switch t.Token {
				case pg.Token_SCONST, pg.Token_USCONST, pg.Token_BCONST, pg.Token_XCONST:
					spans = append(spans, redact.Span{Start: int(t.Start), End: int(t.End)})
				}
			}
			return redact.Apply(text, spans, redact.Mask)
		}
	}
	if i := strings.IndexAny(text, "'$\"\x00"); i >= 0 {
		return text[:i] + redact.Mask
	}
	return text
}
