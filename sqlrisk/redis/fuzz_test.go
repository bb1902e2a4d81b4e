package redis

import (
	"fmt"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

// FuzzAnalyze splits a command line as redis-cli does and classifies it:
// no panic, deterministic, risk consistent with the rules, and an AUTH
// password never in the redacted text.
func FuzzAnalyze(f *testing.F) {
	for _, s := range []string{
		"GET k", `SET k "v w"`, "CONFIG SET dir /tmp", "AUTH user s3cretpass", "ACL SETUSER u >pw on",
		"EVAL \"return 1\" 0", "MIGRATE h 1 k 0 10 AUTH2 u pw", "config set requirepass 'x y'",
	} {
		f.Add(s)
	}
	a := New()
	f.Fuzz(func(t *testing.T, line string) {
		cmd := &protocols.Command{Protocol: protocols.Redis, Text: line}
		c1, c2 := a.Analyze(cmd), a.Analyze(cmd)
		if fmt.Sprint(c1) != fmt.Sprint(c2) {
			t.Fatalf("not deterministic: %v %v", c1, c2)
		}
		if c1.Risk != rule.RiskOfMax(c1.Rules) {
			t.Fatalf("risk %s does not match rules %v", c1.Risk, c1.Rules)
		}
		args, err := SplitArgs(line)
		if err != nil || len(args) < 2 || !strings.EqualFold(args[0], "AUTH") {
			return
		}
		pass := args[len(args)-1]
		if len(pass) >= 6 && !strings.Contains(strings.Join(args[:len(args)-1], " "), pass) && strings.Contains(c1.Redacted, pass) {
			t.Fatalf("AUTH password leaked: %q", c1.Redacted)
		}
	})
}
