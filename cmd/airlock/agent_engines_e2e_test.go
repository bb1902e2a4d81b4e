package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/session/identity"
)

// enginesConfig fronts PostgreSQL database pgDB (main), MariaDB database
// myDB (shop) and the Redis test database, with and without key patterns
// (cache, bare), for the agent frontends. DELETE goes to review so that
// statements with parameters can be held; reach beyond the database is
// denied; approvals hold, which the agent frontend turns into retry.
func enginesConfig(pgDB, myDB, keyPrefix string) string {
	return fmt.Sprintf(`
listen:
  postgres: 127.0.0.1:0
  mysql: 127.0.0.1:0
  redis: 127.0.0.1:0
  admin: 127.0.0.1:0
  http: 127.0.0.1:0
log:
  level: debug
  format: text
identities:
  - name: dev
    groups: [developers]
    token_sha256: %[1]s
  - name: agent
    groups: [agents]
    token_sha256: %[2]s
policy:
  rules:
    reach.*: deny
    write.delete: review
approvals:
  mode: hold
  timeout: 2m
  reviewers: [dev]
masking:
  detect:
    - {entity: email, strategy: partial}
  columns:
    - {name: "secret*", strategy: redact}
connections:
  - name: main
    protocol: postgres
    description: The shop's orders and customers.
    upstream:
      address: %[3]s
      database: %[4]s
      user: postgres
      password: ${TEST_UPSTREAM_PASSWORD}
      tls: {mode: disable}
    allow: [dev, agent]
  - name: shop
    protocol: mysql
    description: The shop on MariaDB.
    upstream:
      address: %[5]s
      database: %[6]s
      user: root
      password: ""
      tls: {mode: prefer}
    allow: [dev, agent]
  - name: cache
    protocol: redis
    description: Sessions and customer cards.
    upstream:
      address: %[7]s
      database: %[8]d
      keys:
        - {pattern: "%[9]s:user:*", type: hash, description: A customer's card, fields: [email, name, secret_pin]}
        - {pattern: "%[9]s:visits", type: string, description: A counter}
    policy:
      rules:
        admin.monitor: deny
    allow: [dev, agent]
  - name: bare
    protocol: redis
    upstream: {address: %[7]s, database: %[8]d}
    allow: [agent]
`, devTokenHash, identity.HashToken(agentToken), testenv.PostgresAddr, pgDB, testenv.MariaDBAddr, myDB,
		testenv.RedisAddr, testDB, keyPrefix)
}

// startEngines runs Airlock on enginesConfig.
func startEngines(t *testing.T, pgDB, myDB, keyPrefix string) *agentInstance {
	t.Helper()
	testenv.Need(t, "PostgreSQL", testenv.PostgresAddr)
	testenv.Need(t, "MariaDB", testenv.MariaDBAddr)
	testenv.Need(t, "Redis", testenv.RedisAddr)
	in := startAirlock(t, enginesConfig(pgDB, myDB, keyPrefix))
	return &agentInstance{instance: in, base: "http://" + in.addr("http")}
}

// bodyCall is a POST of body (marshalled) to connection conn's query
// endpoint as agent.
func bodyCall(conn string, body any) call {
	b, _ := json.Marshal(body)
	return call{method: "POST", path: "/v1/connections/" + conn + "/query", token: agentToken, contentType: "application/json", body: string(b)}
}

// engineAnswer is the query API's answer as these tests read it.
type engineAnswer struct {
	Status    string          `json:"status"`
	Rows      [][]*string     `json:"rows"`
	RowCount  int64           `json:"row_count"`
	Tag       string          `json:"command_tag"`
	Reply     json.RawMessage `json:"reply"`
	ReplyType string          `json:"reply_type"`
	Truncated bool            `json:"truncated"`
	Decision  *struct {
		Rules []string `json:"rules"`
	} `json:"decision"`
	Approval *struct {
		ID string `json:"id"`
	} `json:"approval"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Message string `json:"message"`
}

// ask sends c and decodes the answer, which must have status.
func (a *agentInstance) ask(t *testing.T, c call, status int) engineAnswer {
	t.Helper()
	r := a.do(t, c)
	var ans engineAnswer
	r.json(t, &ans)
	if r.status != status {
		t.Fatalf("%s: status %d, want %d: %s", c.body, r.status, status, r.body)
	}
	return ans
}

// approveAndRetry: a held statement's approval covers only the identical
// statement: the same text with other params (other, when set) makes a new
// request, and the approved one runs once.
func (a *agentInstance) approveAndRetry(t *testing.T, held, other call) engineAnswer {
	t.Helper()
	pending := a.ask(t, held, 202)
	id := pending.Approval.ID
	show := approvalsCLI(t, a.instance, "show", id)
	approvalsCLI(t, a.instance, "approve", id)
	if other.body != "" {
		if again := a.ask(t, other, 202); again.Approval == nil || again.Approval.ID == id {
			t.Fatalf("the approval of %s covered %s: %+v", held.body, other.body, again)
		}
	}
	done := a.ask(t, held, 200)
	if done.Status != "completed" {
		t.Fatalf("the approved retry: %+v", done)
	}
	if again := a.ask(t, held, 202); again.Approval.ID == id {
		t.Fatal("an approval ran twice")
	}
	done.Message, done.Decision = show, pending.Decision
	return done
}

// TestAgentEngines drives the query API and MCP on MySQL and Redis
// connections, and statements with parameters on PostgreSQL and MySQL,
// through one running Airlock.
func TestAgentEngines(t *testing.T) {
	t.Parallel()
	pgDB := testenv.PostgresDB(t)
	seedShop(t, pgDB)
	myDB := mariadbDatabase(t)
	keys := redisKeys(t, "user:1", "visits", "tags", "scores", "list", "user:2")
	prefix := strings.TrimSuffix(keys[0], ":user:1")
	a := startEngines(t, pgDB, myDB, prefix)
	my := &mysqlInstance{instance: a.instance, db: myDB}
	my.exec(t,
		"CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL COMMENT 'full name', email VARCHAR(80), born DATE, balance DECIMAL(8,2)) COMMENT 'people who bought something'",
		"INSERT INTO customers VALUES (1, 'Ada', 'ada@example.com', '1815-12-10', 12.50), (2, 'Grace', 'grace@example.org', NULL, 0), (3, 'Linus', NULL, '1969-12-28', NULL)",
		"CREATE VIEW names AS SELECT name FROM customers",
		"CREATE TABLE scratch (id INT)")

	t.Run("connections", func(t *testing.T) {
		r := a.do(t, call{method: "GET", path: "/v1/connections", token: agentToken})
		for _, want := range []string{`{"name":"shop","protocol":"mysql","description":"The shop on MariaDB.","schema":true}`,
			`{"name":"cache","protocol":"redis","description":"Sessions and customer cards.","schema":true}`} {
			if !strings.Contains(r.body, want) {
				t.Errorf("lacks %s: %s", want, r.body)
			}
		}
	})

	t.Run("mysql", func(t *testing.T) { agentMySQL(t, a, my) })
	t.Run("redis", func(t *testing.T) { agentRedis(t, a, keys) })
	t.Run("params", func(t *testing.T) { agentParams(t, a, pgDB, my) })
	t.Run("mcp", func(t *testing.T) { agentEnginesMCP(t, a, keys) })
}

func agentMySQL(t *testing.T, a *agentInstance, my *mysqlInstance) {
	r := a.do(t, call{method: "GET", path: "/v1/connections/shop/schema", token: agentToken})
	var schema struct {
		Tables []struct {
			Schema, Name, Kind, Comment string
			Columns                     []struct {
				Name, Type, Comment string
				Nullable            bool
			}
		}
	}
	r.json(t, &schema)
	if r.status != 200 || len(schema.Tables) != 3 {
		t.Fatalf("schema: %d %s", r.status, r.body)
	}
	c, v := schema.Tables[0], schema.Tables[1]
	if c.Name != "customers" || c.Kind != "table" || c.Schema != my.db || c.Comment != "people who bought something" || len(c.Columns) != 5 ||
		c.Columns[1].Name != "name" || c.Columns[1].Type != "varchar(40)" || c.Columns[1].Nullable || c.Columns[1].Comment != "full name" ||
		!c.Columns[2].Nullable || c.Columns[4].Type != "decimal(8,2)" {
		t.Errorf("customers: %+v", c)
	}
	if v.Name != "names" || v.Kind != "view" || v.Comment != "" || len(v.Columns) != 1 {
		t.Errorf("the view: %+v", v)
	}

	ans := a.ask(t, bodyCall("shop", map[string]any{"sql": "SELECT * FROM customers ORDER BY id"}), 200)
	row := func(i int) string {
		var cells []string
		for _, c := range ans.Rows[i] {
			if c == nil {
				cells = append(cells, "NULL")
			} else {
				cells = append(cells, *c)
			}
		}
		return strings.Join(cells, "|")
	}
	if ans.RowCount != 3 || len(ans.Rows) != 3 || row(0) != "1|Ada|a***@example.com|1815-12-10|12.50" || row(2) != "3|Linus|NULL|1969-12-28|NULL" {
		t.Fatalf("select: %+v", ans)
	}
	if ans := a.ask(t, bodyCall("shop", map[string]any{"sql": "UPDATE customers SET name = name WHERE id < 3"}), 200); ans.Tag != "OK" {
		t.Errorf("a write: %+v", ans)
	}
	if ans := a.ask(t, bodyCall("shop", map[string]any{"sql": "SELECT * FROM no_such_table"}), 422); ans.Error == nil || ans.Error.Code != "1146" ||
		!strings.Contains(ans.Error.Message, "no_such_table") {
		t.Errorf("an upstream error: %+v", ans)
	}
	if ans := a.ask(t, bodyCall("shop", map[string]any{"sql": "SELECT * FROM customers INTO OUTFILE '/tmp/airlock-agent-e2e'"}), 403); !slices.Contains(ans.Decision.Rules, "reach.file") {
		t.Errorf("INTO OUTFILE: %+v", ans)
	}
	drop := bodyCall("shop", map[string]any{"sql": "DROP TABLE scratch"})
	a.approveAndRetry(t, drop, call{})
	var n int
	if err := my.admin(t).QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'scratch'", my.db).Scan(&n); err != nil || n != 0 {
		t.Errorf("the approved DROP did not run: %d %v", n, err)
	}
}

func agentRedis(t *testing.T, a *agentInstance, keys []string) {
	user, visits, tags, scores, list, user2 := keys[0], keys[1], keys[2], keys[3], keys[4], keys[5]
	cmd := func(args ...string) call { return bodyCall("cache", map[string]any{"command": args}) }
	for _, tc := range []struct {
		name  string
		args  []string
		reply string
		typ   string
	}{
		{"HSET", []string{"HSET", user, "email", "ada@example.com", "name", "Ada", "secret_pin", "1234"}, `3`, "integer"},
		{"HGETALL masks by field", []string{"HGETALL", user}, `{"email":"a***@example.com","name":"Ada","secret_pin":"[redacted]"}`, "map"},
		{"HMGET with a missing field", []string{"HMGET", user, "name", "nope"}, `["Ada",null]`, "array"},
		{"HGET", []string{"HGET", user, "email"}, `"a***@example.com"`, "bulk"},
		{"INCR", []string{"INCR", visits}, `1`, "integer"},
		{"GET of nothing", []string{"GET", user2}, `null`, "null"},
		{"SADD", []string{"SADD", tags, "a", "b"}, `2`, "integer"},
		{"SMISMEMBER", []string{"SMISMEMBER", tags, "a", "z"}, `[1,0]`, "array"},
		{"ZADD", []string{"ZADD", scores, "1.5", "m"}, `1`, "integer"},
		{"ZRANGE WITHSCORES", []string{"ZRANGE", scores, "0", "-1", "WITHSCORES"}, `[["m",1.5]]`, "array"},
		{"RPUSH", []string{"RPUSH", list, "x", "y@example.com"}, `2`, "integer"},
		{"LRANGE", []string{"LRANGE", list, "0", "-1"}, `["x","y***@example.com"]`, "array"},
		{"EXISTS", []string{"EXISTS", user, user2}, `1`, "integer"},
		{"PING", []string{"PING"}, `"PONG"`, "simple"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ans := a.ask(t, cmd(tc.args...), 200)
			if ans.Status != "completed" || string(ans.Reply) != tc.reply || ans.ReplyType != tc.typ || ans.Rows != nil {
				t.Fatalf("got %s (%s): %+v", ans.Reply, ans.ReplyType, ans)
			}
		})
	}
	if ans := a.ask(t, bodyCall("cache", map[string]any{"command": []string{"LRANGE", list, "0", "-1"}, "max_rows": 1}), 200); !ans.Truncated ||
		string(ans.Reply) != `["x"]` || ans.RowCount != 2 {
		t.Errorf("a truncated array: %+v", ans)
	}
	if ans := a.ask(t, cmd("INCR", user), 422); ans.Error == nil || ans.Error.Code != "WRONGTYPE" {
		t.Errorf("WRONGTYPE: %+v", ans)
	}
	if ans := a.ask(t, cmd("MONITOR"), 403); !slices.Contains(ans.Decision.Rules, "admin.monitor") {
		t.Errorf("MONITOR: %+v", ans)
	}
	// KEYS is held; its approval covers this argument vector only.
	done := a.approveAndRetry(t, cmd("KEYS", user+"*"), cmd("KEYS", user))
	if string(done.Reply) != fmt.Sprintf("[%q]", user) {
		t.Errorf("approved KEYS: %s", done.Reply)
	}
	for _, bad := range []map[string]any{{"sql": "GET x"}, {"command": []string{"GET", "x"}, "params": []any{1}}, {}} {
		if r := a.do(t, bodyCall("cache", bad)); r.status != 400 || !strings.Contains(r.body, "invalid-query") {
			t.Errorf("%v: %d %s", bad, r.status, r.body)
		}
	}

	r := a.do(t, call{method: "GET", path: "/v1/connections/cache/schema", token: agentToken})
	want := fmt.Sprintf(`"keys":[{"pattern":"%s:user:*","type":"hash","description":"A customer's card","fields":["email","name","secret_pin"]},`, strings.TrimSuffix(user, ":user:1"))
	if r.status != 200 || !strings.Contains(r.body, want) || !strings.Contains(r.body, `"tables":[]`) || !strings.Contains(r.body, "does not scan") {
		t.Errorf("schema: %d %s", r.status, r.body)
	}
	r = a.do(t, call{method: "GET", path: "/v1/connections/bare/schema", token: agentToken})
	if r.status != 200 || strings.Contains(r.body, `"keys"`) || !strings.Contains(r.body, "describes no key patterns") {
		t.Errorf("schema without keys: %d %s", r.status, r.body)
	}
}

func agentParams(t *testing.T, a *agentInstance, pgDB string, my *mysqlInstance) {
	sql := func(conn, text string, params ...any) call {
		return bodyCall(conn, map[string]any{"sql": text, "params": params})
	}
	for _, tc := range []struct {
		name   string
		call   call
		status int
		want   string
	}{
		{"postgres", sql("main", "SELECT name, email FROM customers WHERE id = $1 OR name = $2 ORDER BY id", 1, "Linus"), 200, `[["Ada","a***@example.com"],["Linus",null]]`},
		{"postgres, typed", sql("main", "SELECT $1::int + 1, $2::text, $3::bool, $4::numeric * 2, $5::text IS NULL", 41, "it's", true, 1.25, nil), 200, `[["42","it's","t","2.50","t"]]`},
		{"postgres, never interpolated", sql("main", "SELECT $1::text", "'; DROP TABLE customers; --"), 200, `[["'; DROP TABLE customers; --"]]`},
		{"postgres, a value that is not an integer", sql("main", "SELECT name FROM customers WHERE id = $1", "1 OR 1=1"), 422, `"code":"22P02"`},
		{"postgres, one statement only", sql("main", "SELECT $1::int; SELECT 2", 1), 422, `"code":"42601"`},
		{"mysql", sql("shop", "SELECT name, email, balance FROM customers WHERE id = ? OR name = ? ORDER BY id", 1, "Linus"), 200, `[["Ada","a***@example.com","12.50"],["Linus",null,null]]`},
		{"mysql, never interpolated", sql("shop", "SELECT ?", "'; DROP TABLE customers; --"), 200, `[["'; DROP TABLE customers; --"]]`},
		{"mysql, a count that does not match", sql("shop", "SELECT ?, ?", 1), 422, `"code":"1210"`},
		{"an array", sql("main", "SELECT $1", []int{1}), 400, "must be a string, a number, a boolean or null"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := a.do(t, tc.call)
			if r.status != tc.status || !strings.Contains(r.body, tc.want) {
				t.Fatalf("%d %s, want %d with %s", r.status, r.body, tc.status, tc.want)
			}
		})
	}
	if !tableExists(t, pgDB, "customers") {
		t.Fatal("a parameter ran as SQL")
	}

	for _, conn := range []string{"main", "shop"} {
		t.Run("approval of "+conn+" covers its params", func(t *testing.T) {
			placeholder := map[string]string{"main": "$1", "shop": "?"}[conn]
			del := "DELETE FROM customers WHERE id = " + placeholder
			done := a.approveAndRetry(t, sql(conn, del, 3), sql(conn, del, 2))
			if done.RowCount != 1 || !slices.Equal(done.Decision.Rules, []string{"write.delete"}) {
				t.Errorf("the approved DELETE: %+v", done)
			}
			if !strings.Contains(done.Message, del) || !strings.Contains(done.Message, "-- params: [3]") {
				t.Errorf("the reviewer does not see the params:\n%s", done.Message)
			}
		})
	}
	var n int
	if err := my.admin(t).QueryRow("SELECT COUNT(*) FROM customers WHERE id IN (2, 3)").Scan(&n); err != nil || n != 1 {
		t.Errorf("MySQL rows 2 and 3: %d left, want 1 (%v)", n, err)
	}
}

func agentEnginesMCP(t *testing.T, a *agentInstance, keys []string) {
	cs := a.mcpConnect(t, agentToken, "2025-11-25", nil)
	_, conns, tools := toolNames(t, cs)
	if !slices.Equal(conns, []any{"bare", "cache", "main", "shop"}) {
		t.Fatalf("connections %v", conns)
	}
	b, _ := json.Marshal(tools["query"].InputSchema)
	for _, want := range []string{`"sql"`, `"params"`, `"command"`, `for the Redis connections (bare, cache)`, `"then":{"required":["command"]}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("query's input schema lacks %s: %s", want, b)
		}
	}
	res, out := callTool(t, cs, "query", map[string]any{"connection": "cache", "command": []string{"HGETALL", keys[0]}})
	if res.IsError || out["reply_type"] != "map" || !strings.Contains(resultText(res), `"email":"a***@example.com"`) {
		t.Fatalf("HGETALL: %v %s", out, resultText(res))
	}
	if reply, _ := out["reply"].(map[string]any); reply["name"] != "Ada" {
		t.Errorf("structured reply %v", out["reply"])
	}
	res, out = callTool(t, cs, "query", map[string]any{"connection": "shop", "sql": "SELECT name FROM customers WHERE id = ?", "params": []any{1}})
	if res.IsError || out["status"] != "completed" || !strings.Contains(resultText(res), "Ada") {
		t.Fatalf("params on shop: %v %s", out, resultText(res))
	}
	// Numbers reach the database as the client wrote them, past 2^53 too.
	big := json.Number("9007199254740993")
	res, out = callTool(t, cs, "query", map[string]any{"connection": "main", "sql": "SELECT $1::numeric::text", "params": []any{big}})
	if res.IsError || !strings.Contains(resultText(res), "9007199254740993") {
		t.Fatalf("a large integer: %v %s", out, resultText(res))
	}
	res, _ = callTool(t, cs, "query", map[string]any{"connection": "cache", "sql": "SELECT 1"})
	if !res.IsError || !strings.Contains(resultText(res), "command") {
		t.Errorf("sql on Redis: %s", resultText(res))
	}
	res, _ = callTool(t, cs, "describe_schema", map[string]any{"connection": "cache"})
	if res.IsError || !strings.Contains(resultText(res), "user:* (hash) -- A customer's card\n  fields: email, name, secret_pin") {
		t.Errorf("describe_schema on Redis: %s", resultText(res))
	}
	res, _ = callTool(t, cs, "describe_schema", map[string]any{"connection": "shop"})
	if res.IsError || !strings.Contains(resultText(res), "name varchar(40) NOT NULL -- full name") {
		t.Errorf("describe_schema on MySQL: %s", resultText(res))
	}
}
