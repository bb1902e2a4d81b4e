package mysql

import (
	"strings"

	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

// fallback classifies a statement the TiDB parser rejects by its leading
// keywords and a few unmistakable markers, so that valid MySQL/MariaDB
// syntax the parser lacks (INSTALL PLUGIN, CREATE FUNCTION … SONAME,
// CREATE TRIGGER, CHANGE MASTER, EXECUTE IMMEDIATE, SET PERSIST…) is still
// recognised. It only adds rules: the statement already counts as
// parse.error. It reports whether the statement carries secrets.
func (w *walker) fallback(text string, s stmtRange) bool {
	words, markers := fallbackWords(text, s)
	if w.top {
		w.b.Statement(fallbackKind(words))
	}
	for _, m := range markers {
		switch m {
		case "OUTFILE", "DUMPFILE", "INFILE", "LOAD_FILE":
			w.hit(rule.ReachFile)
		case "SONAME":
			w.hit(rule.ReachPlugin)
		case "SYS_EXEC", "SYS_EVAL":
			w.hit(rule.ReachProgram)
		}
	}
	if len(words) == 0 {
		return false
	}
	f := fallbackWordList(words)
	switch words[0] {
	case "CREATE", "ALTER":
		w.fallbackDefine(text, s, f)
	case "SET":
		w.fallbackSet(f)
	case "EXECUTE":
		if f.second() == "IMMEDIATE" {
			w.hit(rule.CodeDynamic)
			return w.immediate(text, s)
		}
		w.hit(rule.CodeExecute)
	default:
		if id := f.rule(); id != "" {
			w.hit(id)
		}
	}
	return false
}

// fallbackWords are a rejected statement's first words (and variables),
// upper-cased, and every word in it, where the markers are looked for.
func fallbackWords(text string, s stmtRange) (words, markers []string) {
	for _, t := range s.tokens {
		switch t.kind {
		case tokWord:
			word := strings.ToUpper(text[t.start:t.end])
			if len(words) < 16 {
				words = append(words, word)
			}
			markers = append(markers, word)
		case tokVariable:
			if len(words) < 16 {
				words = append(words, strings.ToUpper(text[t.start:t.end]))
			}
		}
	}
	return words, markers
}

// fallbackKind is the statement kind of a rejected statement: its first
// word, with the object it acts on when one is plain.
func fallbackKind(words []string) string {
	if len(words) == 0 {
		return "unknown"
	}
	kind := strings.ToLower(words[0])
	if obj := objectWord(words); obj != "" {
		kind += "_" + strings.ToLower(obj)
	} else if len(words) > 1 && headWords[words[0]] && isAlpha(words[1]) {
		kind += "_" + strings.ToLower(words[1])
	}
	return kind
}

// fallbackWordList is a rejected statement's first words.
type fallbackWordList []string

// has reports whether any of ws is among the words.
func (f fallbackWordList) has(ws ...string) bool {
	for _, x := range f {
		for _, y := range ws {
			if x == y {
				return true
			}
		}
	}
	return false
}

func (f fallbackWordList) second() string {
	if len(f) > 1 {
		return f[1]
	}
	return ""
}

// fallbackDefine classifies CREATE and ALTER by the object they name; the
// body of a routine, trigger or event is classified too.
func (w *walker) fallbackDefine(text string, s stmtRange, f fallbackWordList) {
	alter := f[0] == "ALTER"
	switch {
	case f.has("TRIGGER", "EVENT", "FUNCTION", "PROCEDURE", "PACKAGE"):
		w.body(text, s)
		w.hit(rule.CodeDefine)
	case f.has("SERVER"):
		w.hit(rule.ReachNetwork)
	case f.has("USER", "ROLE"):
		w.hit(rule.PrivilegeRole)
	case f.has("TABLESPACE", "LOGFILE"):
		w.hit(rule.ReachFile)
	case alter && f.has("INSTANCE"):
		w.hit(rule.AdminConfig)
	case alter:
		w.hit(rule.DDLAlter)
	default:
		w.hit(rule.DDLCreate)
	}
}

// fallbackSet classifies SET: passwords, roles, global and persisted
// variables (with what the variable reaches), or the session's own.
func (w *walker) fallbackSet(f fallbackWordList) {
	second := f.second()
	switch {
	case f.has("PASSWORD"):
		w.hit(rule.PrivilegeRole)
	case f.has("ROLE"):
		w.hit(rule.PrivilegeSetRole)
	case f.has("GLOBAL", "PERSIST", "PERSIST_ONLY") || strings.HasPrefix(second, "@@GLOBAL.") ||
		strings.HasPrefix(second, "@@PERSIST"):
		w.hit(rule.AdminConfig)
		for _, x := range f[1:] {
			if id := globalReach(strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(x, "@@GLOBAL."), "@@PERSIST."), "@@PERSIST_ONLY."))); id != "" {
				w.hit(id)
			}
		}
	default:
		w.hit(rule.SessionSet)
	}
}

// rule is the rule of a rejected statement whose first word says enough
// (empty: none).
func (f fallbackWordList) rule() string {
	switch f[0] {
	case "INSTALL":
		return rule.ReachPlugin
	case "UNINSTALL":
		return rule.AdminConfig
	case "DROP":
		if f.has("USER", "ROLE") {
			return rule.PrivilegeRole
		}
		return rule.SchemaDrop
	case "TRUNCATE":
		return rule.SchemaTruncate
	case "RENAME":
		if f.has("USER") {
			return rule.PrivilegeRole
		}
		return rule.SchemaRename
	case "GRANT", "REVOKE":
		return rule.PrivilegeGrant
	case "CHANGE", "PURGE":
		return rule.AdminReplication
	case "START", "STOP":
		if f.has("SLAVE", "REPLICA", "GROUP_REPLICATION", "ALL") {
			return rule.AdminReplication
		}
	case "RESET":
		if f.has("MASTER", "SLAVE", "REPLICA", "BINARY") {
			return rule.AdminReplication
		}
		return rule.AdminFlush
	case "FLUSH":
		return rule.AdminFlush
	case "KILL":
		return rule.AdminKill
	case "SHUTDOWN", "RESTART":
		return rule.AdminShutdown
	case "CLONE":
		return rule.ReachNetwork
	case "LOCK":
		if f.has("INSTANCE") {
			return rule.AdminBlocking
		}
		return rule.LockTable
	case "BACKUP":
		return rule.AdminMaintenance
	case "LOAD":
		if f.has("INDEX") {
			return rule.AdminMaintenance
		}
		return rule.ReachFile // LOAD DATA, LOAD XML
	case "CALL":
		return rule.CodeCall
	case "BINLOG", "PREPARE":
		return rule.CodeDynamic
	case "DELETE", "UPDATE":
		return rule.WriteUnbounded // unknown shape: assume the worst of its kind
	case "INSERT", "REPLACE":
		return rule.WriteInsert
	}
	return ""
}

// knownSimple recognises a few statement families the TiDB grammar lacks
// but whose effect is plain from their keywords, when they hold nothing but
// words, names, literals, commas and dots (no parentheses, so no function
// call or sub-query): XA transaction control (used by transaction
// managers), CHECK TABLE and CHECKSUM TABLE, SHOW. Anything else the parser
// rejects stays parse.error.
func (w *walker) knownSimple(text string, s stmtRange) bool {
	var first, second string
	for i, t := range s.tokens {
		switch t.kind {
		case tokWord, tokString, tokQuotedID:
		case tokPunct:
			if c := text[t.start]; c != ',' && c != '.' {
				return false
			}
		default:
			return false
		}
		if t.kind == tokWord {
			if i == 0 {
				first = strings.ToUpper(text[t.start:t.end])
			} else if i == 1 {
				second = strings.ToUpper(text[t.start:t.end])
			}
		}
	}
	kind, id := "", ""
	switch {
	case first == "XA":
		kind = "xa"
	case (first == "CHECK" || first == "CHECKSUM") && second == "TABLE":
		kind, id = strings.ToLower(first)+"_table", rule.MaintenanceRoutine
	case first == "SHOW" && second != "CREATE":
		kind = "show"
	default:
		return false
	}
	if w.top {
		w.b.Statement(kind)
	}
	if id != "" {
		w.hit(id)
	}
	return true
}

// objectWord finds the object type of CREATE/ALTER/DROP past modifiers
// such as OR REPLACE, DEFINER = user, AGGREGATE or TEMPORARY.
func objectWord(words []string) string {
	switch words[0] {
	case "CREATE", "ALTER", "DROP":
	default:
		return ""
	}
	for _, w := range words[1:] {
		switch w {
		case "TABLE", "VIEW", "PROCEDURE", "FUNCTION", "TRIGGER", "EVENT", "USER", "ROLE", "SERVER",
			"INDEX", "DATABASE", "SCHEMA", "TABLESPACE", "LOGFILE", "SEQUENCE", "PACKAGE":
			return w
		}
	}
	return ""
}

// headWords are statement keywords whose second word names the kind.
var headWords = map[string]bool{
	"CREATE": true, "ALTER": true, "DROP": true, "SET": true, "INSTALL": true, "UNINSTALL": true,
	"CHANGE": true, "RESET": true, "START": true, "STOP": true, "EXECUTE": true, "LOAD": true,
	"RENAME": true, "LOCK": true, "SHOW": true, "PURGE": true, "FLUSH": true,
}

func isAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'A' || c > 'Z') && c != '_' {
			return false
		}
	}
	return s != ""
}

// body classifies the first statement of a trigger, event or routine body
// the parser could not read as a whole: the code after FOR EACH ROW, DO or
// BEGIN up to the first semicolon. The statements after that semicolon are
// separate pieces of the split and classified as such.
func (w *walker) body(text string, s stmtRange) {
	for i, t := range s.tokens {
		if t.kind != tokWord {
			continue
		}
		switch strings.ToUpper(text[t.start:t.end]) {
		case "ROW", "DO", "BEGIN", "RETURN":
			rest := s.tokens[i+1:]
			for len(rest) > 0 && rest[0].kind == tokWord && strings.EqualFold(text[rest[0].start:rest[0].end], "BEGIN") {
				rest = rest[1:]
			}
			if len(rest) > 0 {
				w.nested(text[rest[0].start:s.end])
			}
			return
		}
	}
}

// immediate classifies MariaDB's EXECUTE IMMEDIATE 'sql': when the SQL is
// a literal, the statement it runs.
func (w *walker) immediate(text string, s stmtRange) bool {
	for i, t := range s.tokens {
		if t.kind != tokString || i != 2 {
			continue
		}
		lit := text[t.start:t.end]
		if sql, ok := unquote(lit, !w.mode.noBackslashEscapes); ok {
			return w.nested(sql)
		}
	}
	return false
}

// unquote decodes a MySQL string literal.
func unquote(lit string, escapes bool) (string, bool) {
	if len(lit) < 2 {
		return "", false
	}
	q := lit[0]
	body := lit[1 : len(lit)-1]
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c == '\\' && escapes && i+1 < len(body):
			i++
			switch body[i] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '0':
				b.WriteByte(0)
			case 'Z':
				b.WriteByte(26)
			default:
				b.WriteByte(body[i])
			}
		case c == q && i+1 < len(body) && body[i+1] == q:
			b.WriteByte(q)
			i++
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}
