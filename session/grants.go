package session

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/airlock-gw/airlock/protocols"
)

// Grant is a prepared statement that a reviewer's approval let through. An
// approval covers one run: the first run of the statement passes, and each
// later one is checked (and held for approval) again.
//
// Two kinds of prepared statements reach it. A statement prepared in SQL
// (PREPARE name AS …, then EXECUTE name) is followed by Check itself from
// its classification; a statement prepared by the protocol (a PostgreSQL
// Parse, a MySQL COM_STMT_PREPARE) is granted by its engine, which calls
// Run before each of its runs. Where the two share one namespace (in
// PostgreSQL an EXECUTE can run a statement a Parse made), the engine
// grants under the name the server knows, and Check covers both ways in.
type Grant struct {
	// cmd is the approved command, checked again for each later run; nil
	// for a statement prepared in SQL.
	cmd *protocols.Command
	// body is the approved statement's redacted text, shown to the
	// reviewer of a later run, since "EXECUTE wipe" alone says nothing.
	body  string
	spent bool // its one run is done
}

// maxGrants bounds the granted statements a session remembers. Past it the
// session refuses to grant more: each one took a reviewer's decision, and
// forgetting one would let its statement run again unreviewed.
const maxGrants = 4096

// maxGrantBody bounds the approved text added to a later review request.
const maxGrantBody = 4 << 10

// Grant records that cmd, approved by a reviewer, was prepared by the
// protocol under name (the name the server knows). The engine calls Run
// before each run of it. It returns nil when the session holds too many
// grants already: the engine then refuses the statement.
func (s *Session) Grant(name string, cmd *protocols.Command) *Grant {
	if s.grants == nil {
		s.grants = map[string]*Grant{}
	}
	if _, ok := s.grants[name]; !ok && len(s.grants) >= maxGrants {
		return nil
	}
	g := &Grant{cmd: cmd, body: s.RecordedText(cmd)}
	s.grants[name] = g
	return g
}

// Run is called before each run of a granted statement: the first passes
// as the approval allowed, each later one is checked again (kind names the
// protocol message that runs it, for the recording). Errors are Check's.
func (s *Session) Run(ctx context.Context, g *Grant, kind string) (protocols.Decision, error) {
	if !g.spent {
		g.spent = true
		return protocols.Decision{Action: protocols.Allow}, nil
	}
	cmd := *g.cmd
	cmd.Kind = kind
	return s.Check(ctx, &cmd)
}

// repeatsGrant returns a granted statement that cls runs and whose one run
// is spent, if any.
func (s *Session) repeatsGrant(cls *protocols.Classification) (*Grant, string, bool) {
	for _, name := range cls.Executes {
		if g := s.grants[name]; g != nil && g.spent {
			return g, name, true
		}
	}
	return nil, "", false
}

// forReview is cls as a reviewer of a repeated run reads it: with the
// approved statement's text.
func (g *Grant) forReview(cls *protocols.Classification, name string) *protocols.Classification {
	if g.body == "" {
		return cls
	}
	body := g.body
	if len(body) > maxGrantBody {
		body = body[:maxGrantBody] + "…"
	}
	c := *cls
	c.Redacted = fmt.Sprintf("%s\n-- %s: an approval let this through earlier:\n-- %s", cls.Redacted, name,
		strings.ReplaceAll(body, "\n", "\n-- "))
	return &c
}

// notePrepares follows the statements prepared and run in SQL after cls
// was allowed. A name is never forgotten, not even after DEALLOCATE: a
// PREPARE that reuses it may fail, and the approved statement would then be
// the one EXECUTE runs.
func (s *Session) notePrepares(cls *protocols.Classification, approved bool) {
	for _, name := range cls.Executes {
		if g := s.grants[name]; g != nil {
			g.spent = true
		}
	}
	if !approved {
		return
	}
	if s.grants == nil {
		s.grants = map[string]*Grant{}
	}
	for _, name := range cls.Prepares {
		// Past the bound an approved PREPARE is still remembered: it
		// replaces nothing, so the bound only keeps protocol grants in check.
		s.grants[name] = &Grant{spent: slices.Contains(cls.Executes, name), body: cls.Redacted}
	}
}
