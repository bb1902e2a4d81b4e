package sqlrisk

import (
	"testing"

	"github.com/airlock-gw/airlock/protocols"
)

// benchMix is a realistic mix per dialect: OLTP reads and writes, an
// ORM-style long select, DDL and a multi-statement text.
var benchMix = map[protocols.Protocol][]struct{ name, text string }{
	protocols.Postgres: {
		{"select_pk", "SELECT id, email, name FROM users WHERE id = $1"},
		{"insert", "INSERT INTO orders (user_id, total, status) VALUES ($1, $2, $3) RETURNING id"},
		{"update", "UPDATE accounts SET balance = balance - $1 WHERE id = $2 AND balance >= $1"},
		{"orm_select", `SELECT "users"."id", "users"."email", "users"."name", "users"."created_at", "orders"."id" AS "order_id", "orders"."total" FROM "users" LEFT OUTER JOIN "orders" ON "orders"."user_id" = "users"."id" WHERE "users"."deleted_at" IS NULL AND "orders"."status" IN ($1, $2, $3) AND "users"."created_at" > $4 ORDER BY "users"."created_at" DESC, "orders"."id" LIMIT $5 OFFSET $6`},
		{"ddl", "CREATE TABLE IF NOT EXISTS events (id bigserial PRIMARY KEY, kind text NOT NULL, payload jsonb, created_at timestamptz DEFAULT now())"},
		{"multi", "BEGIN; UPDATE stock SET qty = qty - 1 WHERE sku = 'A1'; INSERT INTO moves (sku, delta) VALUES ('A1', -1); COMMIT"},
	},
	protocols.MySQL: {
		{"select_pk", "SELECT id, email, name FROM users WHERE id = ?"},
		{"insert", "INSERT INTO orders (user_id, total, status) VALUES (?, ?, ?)"},
		{"update", "UPDATE accounts SET balance = balance - ? WHERE id = ? AND balance >= ?"},
		{"orm_select", "SELECT `users`.`id`, `users`.`email`, `users`.`name`, `users`.`created_at`, `orders`.`id` AS `order_id`, `orders`.`total` FROM `users` LEFT OUTER JOIN `orders` ON `orders`.`user_id` = `users`.`id` WHERE `users`.`deleted_at` IS NULL AND `orders`.`status` IN (?, ?, ?) AND `users`.`created_at` > ? ORDER BY `users`.`created_at` DESC, `orders`.`id` LIMIT ? OFFSET ?"},
		{"ddl", "CREATE TABLE IF NOT EXISTS events (id BIGINT AUTO_INCREMENT PRIMARY KEY, kind VARCHAR(64) NOT NULL, payload JSON, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)"},
		{"multi", "START TRANSACTION; UPDATE stock SET qty = qty - 1 WHERE sku = 'A1'; INSERT INTO moves (sku, delta) VALUES ('A1', -1); COMMIT"},
	},
}

var redisMix = []struct {
	name string
	args []string
}{
	{"get", []string{"GET", "session:8f14e45fceea167a"}},
	{"set", []string{"SET", "session:8f14e45fceea167a", "{\"user\":42}", "EX", "3600"}},
	{"hset", []string{"HSET", "user:42", "name", "Ada", "email", "ada@example.com"}},
	{"config_set", []string{"CONFIG", "SET", "dir", "/var/www"}},
}

func BenchmarkClassify(b *testing.B) {
	for _, p := range []protocols.Protocol{protocols.Postgres, protocols.MySQL} {
		for _, tc := range benchMix[p] {
			cmd := &protocols.Command{Protocol: p, Text: tc.text}
			b.Run(string(p)+"/"+tc.name+"/uncached", func(b *testing.B) {
				c := New(Config{Cache: CacheConfig{Entries: -1}})
				b.ReportAllocs()
				b.SetBytes(int64(len(tc.text)))
				for b.Loop() {
					c.Classify(cmd)
				}
			})
			b.Run(string(p)+"/"+tc.name+"/cached", func(b *testing.B) {
				c := New(Config{})
				c.Classify(cmd)
				b.ReportAllocs()
				b.SetBytes(int64(len(tc.text)))
				for b.Loop() {
					c.Classify(cmd)
				}
			})
		}
	}
	for _, tc := range redisMix {
		cmd := &protocols.Command{Protocol: protocols.Redis, Args: tc.args}
		b.Run("redis/"+tc.name+"/uncached", func(b *testing.B) {
			c := New(Config{Cache: CacheConfig{Entries: -1}})
			b.ReportAllocs()
			for b.Loop() {
				c.Classify(cmd)
			}
		})
		b.Run("redis/"+tc.name+"/cached", func(b *testing.B) {
			c := New(Config{})
			c.Classify(cmd)
			b.ReportAllocs()
			for b.Loop() {
				c.Classify(cmd)
			}
		})
	}
}

// BenchmarkClassifyParallel measures cache hits under concurrency.
func BenchmarkClassifyParallel(b *testing.B) {
	c := New(Config{})
	var cmds []*protocols.Command
	for _, p := range []protocols.Protocol{protocols.Postgres, protocols.MySQL} {
		for _, tc := range benchMix[p] {
			cmds = append(cmds, &protocols.Command{Protocol: p, Text: tc.text})
		}
	}
	for _, cmd := range cmds {
		c.Classify(cmd)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c.Classify(cmds[i%len(cmds)])
			i++
		}
	})
}
