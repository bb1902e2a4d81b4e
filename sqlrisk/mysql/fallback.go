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
	var words []string
	var markers []string
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
	if w.top {
		kind := "unknown"
		if len(words) > 0 {
			kind = strings.ToLower(words[0])
			if obj := objectWord(words); obj != "" {
				kind += "_" + strings.ToLower(obj)
			} else if len(words) > 1 && headWords[words[0]] && isAlpha(words[1]) {
				kind += "_" + strings.ToLower(words[1])
			}
		}
		w.b.Statement(kind)
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
	has := func(ws ...string) bool {
		for _, x := range words {
			for _, y := range ws {
				if x == y {
					return true
				}
			}
		}
		return false
	}
	second := ""
	if len(words) > 1 {
		second = words[1]
	}
	switch words[0] {
	case "CREATE", "ALTER":
		if has("TRIGGER", "EVENT", "FUNCTION", "PROCEDURE", "PACKAGE") {
			w.body(text, s)
		}
	}
	switch words[0] {
	case "INSTALL":
		w.hit(rule.ReachPlugin)
	case "UNINSTALL":
		w.hit(rule.AdminConfig)
	case "CREATE", "ALTER":
		switch {
		case has("TRIGGER", "EVENT", "FUNCTION", "PROCEDURE", "PACKAGE"):
			w.hit(rule.CodeDefine)
		case has("SERVER"):
			w.hit(rule.ReachNetwork)
		case has("USER", "ROLE"):
			w.hit(rule.PrivilegeRole)
		case has("TABLESPACE", "LOGFILE"):
			w.hit(rule.ReachFile)
		case words[0] == "ALTER" && has("INSTANCE"):
			w.hit(rule.AdminConfig)
		case words[0] == "ALTER":
			w.hit(rule.DDLAlter)
		default:
			w.hit(rule.DDLCreate)
		}
	case "DROP":
		switch {
		case has("USER", "ROLE"):
			w.hit(rule.PrivilegeRole)
		default:
			w.hit(rule.SchemaDrop)
		}
	case "TRUNCATE":
		w.hit(rule.SchemaTruncate)
	case "RENAME":
		if has("USER") {
			w.hit(rule.PrivilegeRole)
		} else {
			w.hit(rule.SchemaRename)
		}
	case "GRANT", "REVOKE":
		w.hit(rule.PrivilegeGrant)
	case "CHANGE", "PURGE":
		w.hit(rule.AdminReplication)
	case "START", "STOP":
		if has("SLAVE", "REPLICA", "GROUP_REPLICATION", "ALL") {
			w.hit(rule.AdminReplication)
		}
	case "RESET":
		if has("MASTER", "SLAVE", "REPLICA", "BINARY") {
			w.hit(rule.AdminReplication)
		} else {
			w.hit(rule.AdminFlush)
		}
	case "FLUSH":
		w.hit(rule.AdminFlush)
	case "KILL":
		w.hit(rule.AdminKill)
	case "SHUTDOWN", "RESTART":
		w.hit(rule.AdminShutdown)
	case "CLONE":
		w.hit(rule.ReachNetwork)
	case "LOCK":
		if has("INSTANCE") {
			w.hit(rule.AdminBlocking)
		} else {
			w.hit(rule.LockTable)
		}
	case "BACKUP":
		w.hit(rule.AdminMaintenance)
	case "LOAD":
		if has("INDEX") {
			w.hit(rule.AdminMaintenance)
		} else {
			w.hit(rule.ReachFile) // LOAD DATA, LOAD XML
		}
	case "CALL":
		w.hit(rule.CodeCall)
	case "BINLOG", "PREPARE":
		w.hit(rule.CodeDynamic)
	case "EXECUTE":
		if second == "IMMEDIATE" {
			w.hit(rule.CodeDynamic)
			return w.immediate(text, s)
		}
		w.hit(rule.CodeExecute)
	case "SET":
		switch {
		case has("PASSWORD"):
			w.hit(rule.PrivilegeRole)
		case has("ROLE"):
			w.hit(rule.PrivilegeSetRole)
		case has("GLOBAL", "PERSIST", "PERSIST_ONLY") || strings.HasPrefix(second, "@@GLOBAL.") ||
			strings.HasPrefix(second, "@@PERSIST"):
			w.hit(rule.AdminConfig)
			for _, x := range words[1:] {
				if id := globalReach(strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(x, "@@GLOBAL."), "@@PERSIST."), "@@PERSIST_ONLY."))); id != "" {
					w.hit(id)
				}
			}
		default:
			w.hit(rule.SessionSet)
		}
	case "DELETE", "UPDATE":
		w.hit(rule.WriteUnbounded) // unknown shape: assume the worst of its kind
	case "INSERT", "REPLACE":
		w.hit(rule.WriteInsert)
	}
	return false
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
