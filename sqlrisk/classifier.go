package sqlrisk

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/sqlrisk/httpreq"
	"github.com/airlock-gw/airlock/sqlrisk/mysql"
	"github.com/airlock-gw/airlock/sqlrisk/postgres"
	"github.com/airlock-gw/airlock/sqlrisk/redis"
	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

// Analyzer classifies the commands of one protocol from its own parser. It
// is the seam where another parsing engine can replace the default one.
// Implementations are safe for concurrent use, never fail and never panic on
// any input: what they cannot parse is high risk with rule parse.error.
type Analyzer interface {
	Analyze(cmd *protocols.Command) *protocols.Classification
}

// ShapedAnalyzer is an Analyzer that can also say when its judgement holds
// for every text of the same shape (the text with its numeric literals
// replaced), so that statements differing only in numbers share one cache
// entry. Shape returns false for text it does not read with certainty;
// AnalyzeShaped returns false for results that may depend on a literal's
// value, that carried a secret, or that are not plain DML.
type ShapedAnalyzer interface {
	Analyzer
	Shape(text string) (string, bool)
	AnalyzeShaped(cmd *protocols.Command) (*protocols.Classification, bool)
}

// Config is the classifier's part of the configuration.
type Config struct {
	Cache CacheConfig `yaml:"cache"`
}

// CacheConfig bounds the classification cache.
type CacheConfig struct {
	// Entries is the number of classifications kept (default 10000);
	// -1 disables the cache.
	Entries int `yaml:"entries"`
	// MaxTextBytes is the longest command text cached (default 16384).
	MaxTextBytes int `yaml:"max_text_bytes"`
	// MaxBytes bounds the text held by all entries (default 64 MiB).
	MaxBytes int `yaml:"max_bytes"`
}

// Validate reports every problem of the configuration, each prefixed with
// its path under path (e.g. "classifier").
func (c Config) Validate(path string) error {
	var errs []error
	if c.Cache.Entries < -1 {
		errs = append(errs, fmt.Errorf("%s.cache.entries: %d is negative (want -1 to disable, 0 for the default, or a size)", path, c.Cache.Entries))
	}
	if c.Cache.MaxTextBytes < 0 {
		errs = append(errs, fmt.Errorf("%s.cache.max_text_bytes: %d is negative (want 0 for the default or a size)", path, c.Cache.MaxTextBytes))
	}
	if c.Cache.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("%s.cache.max_bytes: %d is negative (want 0 for the default or a size)", path, c.Cache.MaxBytes))
	}
	return errors.Join(errs...)
}

// Classifier dispatches a command to its protocol's Analyzer through the
// cache. It implements protocols.Classifier and is safe for concurrent use.
type Classifier struct {
	analyzers map[protocols.Protocol]Analyzer
	cache     *Cache // by exact text
	shapes    *Cache // by shape, for ShapedAnalyzers
}

var _ protocols.Classifier = (*Classifier)(nil)

// New returns a classifier with the default analyzers (PostgreSQL through
// pg_query, MySQL/MariaDB through the TiDB parser, Redis through Airlock's
// command table, HTTP requests by their method, and GraphQL operations on
// paths ending in /graphql) and a cache configured by cfg. An HTTP
// connection's own route rules are its classifier
// (protocols.Connection.Classifier).
func New(cfg Config) *Classifier {
	return NewWith(cfg, map[protocols.Protocol]Analyzer{
		protocols.Postgres: postgres.New(),
		protocols.MySQL:    mysql.New(),
		protocols.Redis:    redis.New(),
		protocols.HTTP:     httpreq.Default(),
	})
}

// NewWith returns a classifier with the given analyzers. A protocol without
// one is classified high risk (protocol.unsupported).
func NewWith(cfg Config, analyzers map[protocols.Protocol]Analyzer) *Classifier {
	m := make(map[protocols.Protocol]Analyzer, len(analyzers))
	for p, a := range analyzers {
		m[p] = a
	}
	return &Classifier{
		analyzers: m,
		cache:     NewCache(cfg.Cache.Entries, cfg.Cache.MaxTextBytes, cfg.Cache.MaxBytes),
		shapes:    NewCache(cfg.Cache.Entries, cfg.Cache.MaxTextBytes, cfg.Cache.MaxBytes),
	}
}

// Classify implements protocols.Classifier. The result may be shared with
// other callers through the cache: treat it as immutable.
func (c *Classifier) Classify(cmd *protocols.Command) *protocols.Classification {
	a, ok := c.analyzers[cmd.Protocol]
	if !ok {
		return rule.Failure(rule.ProtocolUnsupported, "")
	}
	if cmd.Payload != nil {
		// A request's body decides as much as its text, and may carry
		// secrets: not cached.
		return a.Analyze(cmd)
	}
	k := cacheKey{protocol: cmd.Protocol, text: cmd.Text}
	if cmd.Protocol == protocols.Redis && len(cmd.Args) > 0 {
		k.text = argsKey(cmd.Args)
	}
	if v, ok := c.cache.get(k); ok {
		return v
	}
	if sa, ok := a.(ShapedAnalyzer); ok && len(cmd.Args) == 0 {
		if shape, ok := sa.Shape(cmd.Text); ok {
			sk := cacheKey{protocol: cmd.Protocol, text: shape}
			if v, ok := c.shapes.get(sk); ok {
				// Same judgement; the redacted text is this command's own
				// (a shape-cached result redacted nothing).
				cp := *v
				cp.Redacted = cmd.Text
				return &cp
			}
			v, same := sa.AnalyzeShaped(cmd)
			if same {
				c.shapes.put(sk, v)
				return v
			}
			return c.keep(k, cmd, v)
		}
	}
	return c.keep(k, cmd, a.Analyze(cmd))
}

// keep caches v under the exact text and returns it. A command that carried
// a secret (CREATE ROLE … PASSWORD, AUTH) is not kept: the cache key is the
// raw text, and the secret should not outlive the command in memory.
func (c *Classifier) keep(k cacheKey, cmd *protocols.Command, v *protocols.Classification) *protocols.Classification {
	if !carriedSecret(cmd, v) {
		c.cache.put(k, v)
	}
	return v
}

func carriedSecret(cmd *protocols.Command, v *protocols.Classification) bool {
	if cmd.Protocol == protocols.Redis {
		return strings.Contains(v.Redacted, "***")
	}
	return v.Redacted != cmd.Text
}

// CacheStats returns the exact-text cache's counters.
func (c *Classifier) CacheStats() CacheStats { return c.cache.Stats() }

// ShapeCacheStats returns the shape cache's counters.
func (c *Classifier) ShapeCacheStats() CacheStats { return c.shapes.Stats() }

// argsKey encodes an argument vector unambiguously (length-prefixed), so
// that ["a b"] and ["a", "b"] are different keys.
func argsKey(args []string) string {
	n := 0
	for _, a := range args {
		n += len(a) + 4
	}
	var b strings.Builder
	b.Grow(n)
	for _, a := range args {
		b.WriteString(strconv.Itoa(len(a)))
		b.WriteByte(':')
		b.WriteString(a)
	}
	return b.String()
}
