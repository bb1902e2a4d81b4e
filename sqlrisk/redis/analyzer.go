package redis

import (
	"strconv"
	"strings"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

// Analyzer classifies Redis commands by their argument vector against the
// command table. It is stateless and safe for concurrent use.
type Analyzer struct{}

// New returns a Redis analyzer.
func New() *Analyzer { return &Analyzer{} }

// Analyze classifies cmd.Args; when Args is empty, cmd.Text is split the
// way redis-cli splits a line.
func (a *Analyzer) Analyze(cmd *protocols.Command) *protocols.Classification {
	if len(cmd.Args) > 0 {
		return a.Args(cmd.Args)
	}
	if strings.TrimSpace(cmd.Text) == "" {
		return (&rule.Builder{}).Classification("")
	}
	args, err := SplitArgs(cmd.Text)
	if err != nil {
		return rule.Failure(rule.ParseError, "***")
	}
	return a.Args(args)
}

// Args classifies one command given as its argument vector.
func (a *Analyzer) Args(args []string) *protocols.Classification {
	var b rule.Builder
	if len(args) == 0 {
		return b.Classification("")
	}
	name := strings.ToUpper(args[0])
	redacted := Redact(args)
	cmd, ok := commands[name]
	if !ok {
		b.Statement(strings.ToLower(name))
		b.Hit(rule.CommandUnknown)
		return b.Classification(redacted)
	}
	kind := strings.ToLower(name)
	if cmd.sub != nil {
		if len(args) < 2 {
			b.Statement(kind)
			if cmd.arity > 0 || len(args) < -cmd.arity {
				b.Hit(rule.CommandUnknown)
			}
			return b.Classification(redacted)
		}
		sub := strings.ToUpper(args[1])
		kind += "_" + strings.ToLower(sub)
		sc, ok := cmd.sub[sub]
		if !ok {
			b.Statement(kind)
			b.Hit(rule.CommandUnknown)
			return b.Classification(redacted)
		}
		cmd = sc
		b.Statement(kind)
		if !arityOK(cmd.arity, len(args)) {
			b.Hit(rule.CommandUnknown)
			return b.Classification(redacted)
		}
		if cmd.keys != keyNone && len(args) > 2 {
			b.Table(args[2])
		}
	} else {
		b.Statement(kind)
		if !arityOK(cmd.arity, len(args)) {
			b.Hit(rule.CommandUnknown)
			return b.Classification(redacted)
		}
		addKeys(&b, cmd.keys, args[1:])
	}
	if cmd.rule != "" {
		b.Hit(cmd.rule)
	}
	switch kind {
	case "config_set":
		configSet(&b, args[2:])
	case "replicaof", "slaveof":
		if strings.EqualFold(args[1], "no") && strings.EqualFold(args[2], "one") {
			b.Hit(rule.AdminReplication)
		} else {
			b.Hit(rule.ReachNetwork) // the server connects out and loads the master's data
		}
	case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
		if n, err := strconv.Atoi(args[2]); err == nil && n >= 0 && 3+n <= len(args) {
			addKeys(&b, keyAll, args[3:3+n])
		}
	}
	return b.Classification(redacted)
}

func arityOK(arity, n int) bool {
	if arity >= 0 {
		return n == arity
	}
	return n >= -arity
}

func addKeys(b *rule.Builder, k keys, args []string) {
	switch k {
	case keyFirst:
		if len(args) > 0 {
			b.Table(args[0])
		}
	case keyFirstTwo:
		for i := 0; i < len(args) && i < 2; i++ {
			b.Table(args[i])
		}
	case keyAll:
		for _, a := range args {
			b.Table(a)
		}
	case keyPairs:
		for i := 0; i < len(args); i += 2 {
			b.Table(args[i])
		}
	}
}

// configSet classifies CONFIG SET parameter value [parameter value …].
func configSet(b *rule.Builder, pairs []string) {
	if len(pairs)%2 != 0 {
		b.Hit(rule.CommandUnknown)
	}
	for i := 0; i < len(pairs); i += 2 {
		if fileParams[strings.ToLower(pairs[i])] {
			b.Hit(rule.ReachFile)
		} else {
			b.Hit(rule.AdminConfig)
		}
	}
}
