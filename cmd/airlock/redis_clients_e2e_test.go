package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/airlock-gw/airlock/protocols/testenv"
)

// TestRedisRueidisClientSideCaching runs rueidis (RESP3 only) through
// Airlock: its client-side cache rests on CLIENT TRACKING and the
// invalidation pushes the upstream sends when a cached key changes.
func TestRedisRueidisClientSideCaching(t *testing.T) {
	_, addr := startRedisMain(t)
	ctx := context.Background()
	k := redisKeys(t, "cached", "h")
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, Username: "dev@cache", Password: devToken,
		DisableRetry: true, ConnWriteTimeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("rueidis: %v", err)
	}
	defer c.Close()
	direct := directRedis(t, testDB)
	direct.Set(ctx, k[0], "first", 0)
	get := func() rueidis.RedisResult { return c.DoCache(ctx, c.B().Get().Key(k[0]).Cache(), time.Minute) }
	if v, err := get().ToString(); err != nil || v != "first" {
		t.Fatalf("DoCache: %q %v", v, err)
	}
	if r := get(); !r.IsCacheHit() {
		t.Fatal("second DoCache was not served from the client's cache")
	}
	// Another client's write invalidates the cached key.
	direct.Set(ctx, k[0], "second bo@example.com", 0)
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := get().ToString()
		if err == nil && v == "second b***@example.com" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cache was not invalidated: %q %v", v, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Ordinary commands alongside, pipelined by rueidis.
	cmds := make(rueidis.Commands, 0, 200)
	for i := range 100 {
		cmds = append(cmds, c.B().Hset().Key(k[1]).FieldValue().FieldValue("f"+string(rune('a'+i%26)), "v").Build())
		cmds = append(cmds, c.B().Hlen().Key(k[1]).Build())
	}
	for i, r := range c.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
	}
	m, err := c.Do(ctx, c.B().Hgetall().Key(k[1]).Build()).AsStrMap()
	if err != nil || len(m) != 26 {
		t.Fatalf("HGETALL: %v %v", m, err)
	}
}

// TestRedisNodeClient runs node-redis (npm package redis) in RESP3 through
// Airlock.
func TestRedisNodeClient(t *testing.T) {
	t.Parallel()
	needTool(t, "node")
	needTool(t, "npm")
	_, addr := startRedisMain(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "redis@5")
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		if testenv.InCI() {
			t.Fatalf("npm install redis: %v\n%s", err, out)
		}
		t.Skipf("npm install redis: %v\n%s", err, out)
	}
	k := redisKeys(t, "s", "h", "n", "ch")
	script := `
const { createClient } = require('redis');
const [host, port, s, h, n, ch] = process.argv.slice(2);
(async () => {
  const opts = { socket: { host, port: Number(port) }, username: 'dev@cache', password: 'dev-token', RESP: 3 };
  const c = createClient(opts);
  await c.connect();
  const out = {};
  out.set = await c.set(s, 'hello ivy@example.com');
  out.get = await c.get(s);
  await c.hSet(h, { secret_token: 'abc', city: 'Turku' });
  out.hash = await c.hGetAll(h);
  out.multi = await c.multi().incr(n).incr(n).exec();
  try { await c.sendCommand(['FLUSHALL']); } catch (e) { out.flush = e.message; }
  const sub = c.duplicate();
  await sub.connect();
  const got = new Promise(resolve => sub.subscribe(ch, m => resolve(m)));
  await new Promise(r => setTimeout(r, 200));
  await c.publish(ch, 'reach max@example.org');
  out.message = await got;
  await sub.quit();
  await c.quit();
  console.log(JSON.stringify(out));
})().catch(e => { console.error(e); process.exit(1); });
`
	if err := os.WriteFile(filepath.Join(dir, "run.js"), []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(addr)
	run := exec.CommandContext(ctx, "node", append([]string{"run.js", host, port}, k...)...)
	run.Dir = dir
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("node-redis: %v\n%s", err, out)
	}
	var got struct {
		Set, Get, Flush, Message string
		Hash                     map[string]string
		Multi                    []int
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node-redis output: %v\n%s", err, out)
	}
	if got.Set != "OK" || got.Get != "hello i***@example.com" || got.Hash["secret_token"] != "[redacted]" || got.Hash["city"] != "Turku" ||
		len(got.Multi) != 2 || got.Multi[1] != 2 || !strings.Contains(got.Flush, "NOPERM") || got.Message != "reach m***@example.org" {
		t.Fatalf("node-redis through Airlock: %s", out)
	}
}
