package redis

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/sqlrisk/internal/ruletest"
	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		args []string
		risk protocols.Risk
		rule string
	}{
		{[]string{"GET", "k"}, protocols.RiskNone, ""},
		{[]string{"get", "k"}, protocols.RiskNone, ""},
		{[]string{"SET", "k", "v", "EX", "10"}, protocols.RiskLow, rule.WriteKey},
		{[]string{"HSET", "h", "f", "v"}, protocols.RiskLow, rule.WriteKey},
		{[]string{"DEL", "a", "b"}, protocols.RiskLow, rule.WriteKey},
		{[]string{"MULTI"}, protocols.RiskNone, ""},
		{[]string{"PING"}, protocols.RiskNone, ""},
		{[]string{"AUTH", "user", "pass"}, protocols.RiskNone, ""},
		{[]string{"CLIENT", "SETNAME", "app"}, protocols.RiskNone, ""},
		{[]string{"CLIENT", "MAINT_NOTIFICATIONS", "ON", "moving-endpoint-type", "internal-ip"}, protocols.RiskNone, ""},
		{[]string{"SCAN", "0", "MATCH", "user:*"}, protocols.RiskNone, ""},
		{[]string{"CONFIG", "GET", "*"}, protocols.RiskHigh, rule.AdminConfig},
		{[]string{"config", "set", "maxmemory", "1mb"}, protocols.RiskHigh, rule.AdminConfig},
		{[]string{"CONFIG", "SET", "dir", "/var/www"}, protocols.RiskCritical, rule.ReachFile},
		{[]string{"CONFIG", "SET", "maxmemory", "1mb", "DBFILENAME", "shell.php"}, protocols.RiskCritical, rule.ReachFile},
		{[]string{"MODULE", "LOAD", "/tmp/evil.so"}, protocols.RiskCritical, rule.ReachPlugin},
		{[]string{"module", "loadex", "/tmp/evil.so"}, protocols.RiskCritical, rule.ReachPlugin},
		{[]string{"SLAVEOF", "evil.example", "6379"}, protocols.RiskCritical, rule.ReachNetwork},
		{[]string{"REPLICAOF", "NO", "ONE"}, protocols.RiskHigh, rule.AdminReplication},
		{[]string{"MIGRATE", "evil", "6379", "", "0", "5000", "KEYS", "a"}, protocols.RiskCritical, rule.ReachNetwork},
		{[]string{"CLUSTER", "MEET", "10.0.0.1", "6379"}, protocols.RiskCritical, rule.ReachNetwork},
		{[]string{"EVAL", "return 1", "0"}, protocols.RiskHigh, rule.CodeScript},
		{[]string{"EVALSHA", "abc", "1", "k"}, protocols.RiskHigh, rule.CodeScript},
		{[]string{"EVAL_RO", "return 1", "0"}, protocols.RiskHigh, rule.CodeScript},
		{[]string{"FCALL", "f", "0"}, protocols.RiskHigh, rule.CodeScript},
		{[]string{"FUNCTION", "LOAD", "#!lua name=x\n"}, protocols.RiskHigh, rule.CodeDefine},
		{[]string{"SCRIPT", "LOAD", "return 1"}, protocols.RiskHigh, rule.CodeScript},
		{[]string{"SCRIPT", "EXISTS", "abc"}, protocols.RiskNone, ""},
		{[]string{"FLUSHALL"}, protocols.RiskHigh, rule.AdminFlush},
		{[]string{"FLUSHDB", "ASYNC"}, protocols.RiskHigh, rule.AdminFlush},
		{[]string{"SWAPDB", "0", "1"}, protocols.RiskHigh, rule.AdminFlush},
		{[]string{"KEYS", "*"}, protocols.RiskHigh, rule.AdminBlocking},
		{[]string{"SHUTDOWN", "NOSAVE"}, protocols.RiskHigh, rule.AdminShutdown},
		{[]string{"DEBUG", "SEGFAULT"}, protocols.RiskHigh, rule.AdminDebug},
		{[]string{"ACL", "SETUSER", "x", "on", ">p", "+@all"}, protocols.RiskHigh, rule.PrivilegeRole},
		{[]string{"ACL", "LIST"}, protocols.RiskHigh, rule.ReadCredentials},
		{[]string{"ACL", "WHOAMI"}, protocols.RiskNone, ""},
		{[]string{"CLIENT", "KILL", "ID", "5"}, protocols.RiskHigh, rule.AdminKill},
		{[]string{"CLIENT", "PAUSE", "10000"}, protocols.RiskHigh, rule.AdminBlocking},
		{[]string{"CLIENT", "LIST"}, protocols.RiskMedium, rule.AdminInspect},
		{[]string{"SAVE"}, protocols.RiskHigh, rule.AdminMaintenance},
		{[]string{"BGSAVE"}, protocols.RiskHigh, rule.AdminMaintenance},
		{[]string{"MONITOR"}, protocols.RiskHigh, rule.AdminMonitor},
		{[]string{"FT.SEARCH", "idx", "*"}, protocols.RiskHigh, rule.CommandUnknown},
		{[]string{"CONFIG", "FROB"}, protocols.RiskHigh, rule.CommandUnknown},
		{[]string{"CONFIG"}, protocols.RiskHigh, rule.CommandUnknown},
		{[]string{"GET"}, protocols.RiskHigh, rule.CommandUnknown},
		{[]string{"GET", "a", "b"}, protocols.RiskHigh, rule.CommandUnknown},
		{[]string{"CONFIG", "SET", "dir"}, protocols.RiskHigh, rule.CommandUnknown},
	}
	a := New()
	for _, tc := range tests {
		ruletest.WriteSeed(t, Redact(tc.args))
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			c := a.Args(tc.args)
			if c.Risk != tc.risk {
				t.Errorf("risk = %s, want %s (%v)", c.Risk, tc.risk, c.Rules)
			}
			if tc.rule != "" && !slices.Contains(c.Rules, tc.rule) {
				t.Errorf("rules = %v, want %s", c.Rules, tc.rule)
			}
		})
	}
}

func TestStatementsAndKeys(t *testing.T) {
	a := New()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"GET", "user:1"}, "[{get [user:1]}]"},
		{[]string{"MSET", "a", "1", "b", "2"}, "[{mset [a b]}]"},
		{[]string{"RENAME", "a", "b"}, "[{rename [a b]}]"},
		{[]string{"EVAL", "s", "2", "k1", "k2", "arg"}, "[{eval [k1 k2]}]"},
		{[]string{"CONFIG", "SET", "dir", "/x"}, "[{config_set []}]"},
		{[]string{"OBJECT", "ENCODING", "k"}, "[{object_encoding [k]}]"},
	} {
		if got := fmt.Sprint(a.Args(tc.args).Statements); got != tc.want {
			t.Errorf("%v: statements = %s, want %s", tc.args, got, tc.want)
		}
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"AUTH", "hunter2"}, "AUTH ***"},
		{[]string{"AUTH", "alice", "hunter2"}, "AUTH alice ***"},
		{[]string{"HELLO", "3", "AUTH", "alice", "hunter2", "SETNAME", "x"}, "HELLO 3 AUTH alice *** SETNAME x"},
		{[]string{"ACL", "SETUSER", "bob", "on", ">hunter2", "#abcd", "<old", "~*", "+@all"}, "ACL SETUSER bob on >*** #*** <*** ~* +@all"},
		{[]string{"CONFIG", "SET", "requirepass", "hunter2", "maxmemory", "1mb"}, "CONFIG SET requirepass *** maxmemory 1mb"},
		{[]string{"config", "set", "MASTERAUTH", "hunter2"}, "config set MASTERAUTH ***"},
		{[]string{"MIGRATE", "h", "6379", "", "0", "5000", "AUTH", "hunter2", "KEYS", "a"}, `MIGRATE h 6379 "" 0 5000 AUTH *** KEYS a`},
		{[]string{"MIGRATE", "h", "6379", "k", "0", "5000", "AUTH2", "u", "hunter2"}, "MIGRATE h 6379 k 0 5000 AUTH2 u ***"},
		{[]string{"SET", "k", "a b"}, `SET k "a b"`},
	} {
		got := Redact(tc.args)
		if got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.args, got, tc.want)
		}
		if strings.Contains(got, "hunter2") {
			t.Errorf("secret leaked: %q", got)
		}
		if c := New().Args(tc.args); c.Redacted != got {
			t.Errorf("Classification.Redacted = %q, want %q", c.Redacted, got)
		}
	}
}

func TestSplitArgs(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
		err  bool
	}{
		{"SET k v", []string{"SET", "k", "v"}, false},
		{`  set "a b" 'c d'  `, []string{"set", "a b", "c d"}, false},
		{`SET k "x\ny\x41"`, []string{"SET", "k", "x\nyA"}, false},
		{`SET k 'it\'s'`, []string{"SET", "k", "it's"}, false},
		{`SET k "unterminated`, nil, true},
		{`SET k "a"b`, nil, true},
		{"", nil, false},
	} {
		got, err := SplitArgs(tc.line)
		if (err != nil) != tc.err || (!tc.err && fmt.Sprint(got) != fmt.Sprint(tc.want)) {
			t.Errorf("SplitArgs(%q) = %q, %v; want %q, err %v", tc.line, got, err, tc.want, tc.err)
		}
	}
	c := New().Analyze(&protocols.Command{Protocol: protocols.Redis, Text: `CONFIG SET dir "/var/www"`})
	if c.Risk != protocols.RiskCritical {
		t.Errorf("text command: %+v", c)
	}
	c = New().Analyze(&protocols.Command{Protocol: protocols.Redis, Text: `AUTH "hunter2`})
	if c.Risk != protocols.RiskHigh || strings.Contains(c.Redacted, "hunter2") {
		t.Errorf("unbalanced text command: %+v", c)
	}
}

// TestTableArities checks the table's own consistency.
func TestTableArities(t *testing.T) {
	for name, c := range commands {
		if c.arity == 0 {
			t.Errorf("%s has no arity", name)
		}
		if name != strings.ToUpper(name) {
			t.Errorf("%s is not upper case", name)
		}
		for sub, sc := range c.sub {
			if sc.arity == 0 || (sc.arity > 0 && sc.arity < 2) || (sc.arity < 0 && sc.arity > -2) {
				t.Errorf("%s %s: arity %d cannot include the subcommand", name, sub, sc.arity)
			}
		}
		if c.rule != "" {
			if _, ok := rule.Lookup(c.rule); !ok {
				t.Errorf("%s: unknown rule %s", name, c.rule)
			}
		}
	}
}
