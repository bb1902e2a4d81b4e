package rule

import (
	"slices"

	"github.com/airlock-gw/airlock/protocols"
)

// Builder accumulates the findings of one command: its statements, the
// tables each touches and the rules the command triggers. The zero value is
// ready to use; a Builder is used by one goroutine.
type Builder struct {
	rules              []string
	stmts              []protocols.Statement
	prepares, executes []string
}

// Prepared records that the command creates the prepared statement name.
func (b *Builder) Prepared(name string) { b.prepares = append(b.prepares, name) }

// Executed records that the command runs the prepared statement name.
func (b *Builder) Executed(name string) { b.executes = append(b.executes, name) }

// Hit records that rule id applies to the command.
func (b *Builder) Hit(id string) {
	if !slices.Contains(b.rules, id) {
		b.rules = append(b.rules, id)
	}
}

// Has reports whether rule id was hit.
func (b *Builder) Has(id string) bool { return slices.Contains(b.rules, id) }

// Rules returns the rules hit so far, in the order they were hit.
func (b *Builder) Rules() []string { return b.rules }

// Statement starts the next top-level statement.
func (b *Builder) Statement(kind string) {
	b.stmts = append(b.stmts, protocols.Statement{Kind: kind, Tables: []string{}})
}

// SetKind replaces the kind of the current statement.
func (b *Builder) SetKind(kind string) {
	if len(b.stmts) == 0 {
		b.Statement(kind)
		return
	}
	b.stmts[len(b.stmts)-1].Kind = kind
}

// Kind returns the kind of the current statement, or "".
func (b *Builder) Kind() string {
	if len(b.stmts) == 0 {
		return ""
	}
	return b.stmts[len(b.stmts)-1].Kind
}

// Table records that the current statement touches table name (as written,
// schema-qualified when it was). Empty names are ignored.
func (b *Builder) Table(name string) {
	if name == "" {
		return
	}
	if len(b.stmts) == 0 {
		b.Statement("unknown")
	}
	s := &b.stmts[len(b.stmts)-1]
	if !slices.Contains(s.Tables, name) {
		s.Tables = append(s.Tables, name)
	}
}

// Risk returns the highest risk among the rules hit so far.
func (b *Builder) Risk() protocols.Risk { return RiskOfMax(b.rules) }

// Classification returns the verdict. The builder must not be used after.
func (b *Builder) Classification(redacted string) *protocols.Classification {
	rules := b.rules
	if rules == nil {
		rules = []string{}
	}
	slices.Sort(rules)
	stmts := b.stmts
	if stmts == nil {
		stmts = []protocols.Statement{}
	}
	return &protocols.Classification{Risk: b.Risk(), Rules: rules, Statements: stmts, Redacted: redacted,
		Prepares: b.prepares, Executes: b.executes}
}

// Failure returns the classification of a command that could not be
// analysed: high risk with rule id, and no statements.
func Failure(id, redacted string) *protocols.Classification {
	return &protocols.Classification{Risk: RiskOf(id), Rules: []string{id}, Statements: []protocols.Statement{}, Redacted: redacted}
}

// RiskOfMax returns the highest risk among ids (none for no ids).
func RiskOfMax(ids []string) protocols.Risk {
	r := protocols.RiskNone
	for _, id := range ids {
		r = max(r, RiskOf(id))
	}
	return r
}
