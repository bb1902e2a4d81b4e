package sqlrisk

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

func TestClassifierDispatch(t *testing.T) {
	c := New(Config{})
	tests := []struct {
		cmd  protocols.Command
		risk protocols.Risk
		rule string
	}{
		{protocols.Command{Protocol: protocols.Postgres, Text: "SELECT pg_read_file('/etc/passwd')"}, protocols.RiskCritical, rule.ReachFile},
		{protocols.Command{Protocol: protocols.MySQL, Text: "SELECT LOAD_FILE('/etc/passwd')"}, protocols.RiskCritical, rule.ReachFile},
		{protocols.Command{Protocol: protocols.Redis, Args: []string{"CONFIG", "SET", "dir", "/tmp"}}, protocols.RiskCritical, rule.ReachFile},
		{protocols.Command{Protocol: protocols.Redis, Text: "FLUSHALL"}, protocols.RiskHigh, rule.AdminFlush},
		{protocols.Command{Protocol: protocols.HTTP, Text: "DELETE /v1/users/7"}, protocols.RiskHigh, rule.HTTPDelete},
		{protocols.Command{Protocol: "oracle", Text: "SELECT 1 FROM dual"}, protocols.RiskHigh, rule.ProtocolUnsupported},
		{protocols.Command{Protocol: protocols.Postgres, Text: ""}, protocols.RiskNone, ""},
	}
	for _, tc := range tests {
		t.Run(string(tc.cmd.Protocol)+" "+tc.cmd.Text, func(t *testing.T) {
			got := c.Classify(&tc.cmd)
			if got.Risk != tc.risk || (tc.rule != "" && !strings.Contains(fmt.Sprint(got.Rules), tc.rule)) {
				t.Errorf("got %s %v, want %s %s", got.Risk, got.Rules, tc.risk, tc.rule)
			}
		})
	}
	// The same protocol and text never classify differently per dialect.
	pg := c.Classify(&protocols.Command{Protocol: protocols.Postgres, Text: "SELECT `x`"})
	my := c.Classify(&protocols.Command{Protocol: protocols.MySQL, Text: "SELECT `x`"})
	if pg.Risk != protocols.RiskHigh || my.Risk != protocols.RiskNone {
		t.Errorf("cache mixed dialects: postgres %s, mysql %s", pg.Risk, my.Risk)
	}
}

func TestClassifierCache(t *testing.T) {
	c := New(Config{})
	cmd := &protocols.Command{Protocol: protocols.Postgres, Text: "SELECT * FROM t WHERE id = $1"}
	a, b := c.Classify(cmd), c.Classify(cmd)
	if a != b {
		t.Error("a repeated text was not served from the cache")
	}
	if s := c.CacheStats(); s.Hits != 1 || s.Misses != 1 || s.Entries != 1 {
		t.Errorf("stats = %+v", s)
	}
	// Redis arguments are keyed unambiguously.
	x := c.Classify(&protocols.Command{Protocol: protocols.Redis, Args: []string{"GET", "a b"}})
	y := c.Classify(&protocols.Command{Protocol: protocols.Redis, Args: []string{"GET", "a", "b"}})
	if x == y || y.Risk != protocols.RiskHigh {
		t.Errorf("redis args collided: %v %v", x, y)
	}
	// Commands that carried a secret are not kept in the cache.
	for _, cmd := range []*protocols.Command{
		{Protocol: protocols.Postgres, Text: "ALTER ROLE x PASSWORD 'hunter2'"},
		{Protocol: protocols.MySQL, Text: "SET PASSWORD = 'hunter2'"},
		{Protocol: protocols.Redis, Args: []string{"AUTH", "hunter2"}},
	} {
		if c.Classify(cmd) == c.Classify(cmd) {
			t.Errorf("%s %q%q was cached", cmd.Protocol, cmd.Text, cmd.Args)
		}
	}
	off := New(Config{Cache: CacheConfig{Entries: -1}})
	if off.Classify(cmd) == off.Classify(cmd) {
		t.Error("a disabled cache served a hit")
	}
}

func TestCacheBounds(t *testing.T) {
	c := NewCache(10, 8, 1<<20)
	v := &protocols.Classification{}
	for i := range 100 {
		c.put(cacheKey{protocols.Postgres, fmt.Sprint(i)}, v)
	}
	if s := c.Stats(); s.Entries != 10 {
		t.Errorf("entries = %d, want 10", s.Entries)
	}
	c.put(cacheKey{protocols.Postgres, "much longer than eight"}, v)
	if _, ok := c.get(cacheKey{protocols.Postgres, "much longer than eight"}); ok {
		t.Error("a text over the size bound was cached")
	}
	// Recently used entries survive eviction (second chance).
	c = NewCache(4, 100, 1<<20)
	for i := range 4 {
		c.put(cacheKey{protocols.Postgres, fmt.Sprint(i)}, v)
	}
	c.get(cacheKey{protocols.Postgres, "0"})
	c.put(cacheKey{protocols.Postgres, "new"}, v)
	if _, ok := c.get(cacheKey{protocols.Postgres, "0"}); !ok {
		t.Error("a recently used entry was evicted first")
	}
	// The byte budget bounds the cache too.
	c = NewCache(1000, 100, 50)
	for i := range 20 {
		c.put(cacheKey{protocols.Postgres, fmt.Sprintf("%010d", i)}, v)
	}
	if s := c.Stats(); s.Bytes > 50 || s.Entries != 5 {
		t.Errorf("byte budget: %+v", s)
	}
	var nilCache *Cache
	nilCache.put(cacheKey{}, v)
	if _, ok := nilCache.get(cacheKey{}); ok {
		t.Error("nil cache hit")
	}
}

func TestCacheConcurrent(t *testing.T) {
	c := New(Config{Cache: CacheConfig{Entries: 64}})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 400 {
				p := []protocols.Protocol{protocols.Postgres, protocols.MySQL, protocols.Redis}[i%3]
				text := fmt.Sprintf("SELECT %d", (i*7+g)%100)
				cmd := &protocols.Command{Protocol: p, Text: text}
				if p == protocols.Redis {
					cmd.Text, cmd.Args = "", []string{"GET", text}
				}
				if got := c.Classify(cmd); got.Risk != protocols.RiskNone {
					t.Errorf("%s %q: %s %v", p, text, got.Risk, got.Rules)
					return
				}
			}
		}()
	}
	wg.Wait()
	if s := c.CacheStats(); s.Entries > 64 {
		t.Errorf("entries = %d over the bound", s.Entries)
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{Cache: CacheConfig{Entries: -2, MaxTextBytes: -1, MaxBytes: -5}}.Validate("classifier")
	for _, want := range []string{"classifier.cache.entries", "classifier.cache.max_text_bytes", "classifier.cache.max_bytes"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %s: %v", want, err)
		}
	}
	if err := (Config{Cache: CacheConfig{Entries: -1}}).Validate("classifier"); err != nil {
		t.Errorf("disabling the cache: %v", err)
	}
}

// TestShapeCache checks that statements differing only in numbers share a
// judgement, each keeps its own text, and literal-sensitive ones do not.
func TestShapeCache(t *testing.T) {
	c := New(Config{})
	pg := func(s string) *protocols.Command { return &protocols.Command{Protocol: protocols.Postgres, Text: s} }
	first := c.Classify(pg("SELECT abalance FROM pgbench_accounts WHERE aid = 1"))
	second := c.Classify(pg("SELECT abalance FROM pgbench_accounts WHERE aid = 2"))
	if st := c.ShapeCacheStats(); st.Hits != 1 {
		t.Fatalf("shape cache hits = %d, want 1", st.Hits)
	}
	if second.Redacted != "SELECT abalance FROM pgbench_accounts WHERE aid = 2" || first.Redacted == second.Redacted {
		t.Fatalf("a shape hit must carry its own text: %q", second.Redacted)
	}
	if second.Risk != first.Risk {
		t.Fatal("different judgement for the same shape")
	}
	// A condition folded from literals is judged anew every time.
	low := c.Classify(pg("DELETE FROM t WHERE id = 5 OR 1 = 2"))
	high := c.Classify(pg("DELETE FROM t WHERE id = 5 OR 1 = 1"))
	if low.Risk != protocols.RiskLow || high.Risk != protocols.RiskHigh {
		t.Fatalf("literal-sensitive statements shared a judgement: %s %s", low.Risk, high.Risk)
	}
}

func BenchmarkClassifyShapeHit(b *testing.B) {
	c := New(Config{})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		c.Classify(&protocols.Command{Protocol: protocols.Postgres, Text: "SELECT abalance FROM pgbench_accounts WHERE aid = " + strconv.Itoa(i)})
	}
}
