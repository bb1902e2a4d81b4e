package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	driver "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/session/identity"
	"github.com/airlock-gw/airlock/session/recording"
)

// secretsEnv is one run of TestSecretsEverywhere: the secrets and raw
// values it plants, the upstream accounts that hold them, and everything
// Airlock's clients were told.
type secretsEnv struct {
	suffix string
	// watched maps each value that must never be written to what it is.
	watched map[string]string
	env     []string // Airlock's environment: every secret comes through it
	pgDB    string
	myDB    string
	api     *standIn
	// jwks serves the key of jwt, a JWT for jwt-user; forged is signed with
	// a key it does not publish.
	jwks        *standIn
	jwt, forged string

	mu     sync.Mutex
	client map[string]*bytes.Buffer // what each client saw, by client
}

// saw records what a client was told (results and errors alike).
func (e *secretsEnv) saw(client string, format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.client[client] == nil {
		e.client[client] = &bytes.Buffer{}
	}
	fmt.Fprintf(e.client[client], format+"\n", args...)
}

func newSecretsEnv(t *testing.T) *secretsEnv {
	var r [4]byte
	_, _ = rand.Read(r[:])
	s := hex.EncodeToString(r[:])
	e := &secretsEnv{suffix: s, client: map[string]*bytes.Buffer{}, watched: map[string]string{}}
	for _, v := range []struct{ env, value, what string }{
		{"SEC_PG_PASSWORD", "pgUp-Secret-" + s, "the PostgreSQL upstream password"},
		{"SEC_MY_PASSWORD", "myUp-Secret-" + s, "the MariaDB upstream password"},
		{"SEC_KV_PASSWORD", "kvUp-Secret-" + s, "the Redis upstream password"},
		{"SEC_PG_WRONG", "pgWrong-Secret-" + s, "a wrong PostgreSQL upstream password"},
		{"SEC_MY_WRONG", "myWrong-Secret-" + s, "a wrong MariaDB upstream password"},
		{"SEC_KV_WRONG", "kvWrong-Secret-" + s, "a wrong Redis upstream password"},
		{"HTTP_BEARER", upstreamCredentials["HTTP_BEARER"], "the HTTP upstream's bearer token"},
	} {
		e.env = append(e.env, v.env+"="+v.value)
		e.watched[v.value] = v.what
	}
	e.watched[devToken] = "dev's token"
	e.watched[agentToken] = "agent's token"
	e.watched[e.wrongToken()] = "a wrong caller token"
	e.watched[e.email()] = "a raw email masking must mask"
	e.watched[e.card()] = "a raw card number masking must mask"
	return e
}

func (e *secretsEnv) wrongToken() string { return "wrongTok-Secret-" + e.suffix }
func (e *secretsEnv) email() string      { return "carol.secret." + e.suffix + "@example.com" }
func (e *secretsEnv) card() string       { return "4111111111111111" }
func (e *secretsEnv) user() string       { return "airlock_sec_" + e.suffix }
func (e *secretsEnv) redisKey() string   { return "sec:" + e.suffix + ":contact" }

// secret returns the value of one of the environment's secrets.
func (e *secretsEnv) secret(name string) string {
	for _, kv := range e.env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	panic(name)
}

// upstreams creates a dedicated account with a unique password on each
// server, and a table (a key on Redis) holding the values masking must
// mask; each is removed when the test ends.
func (e *secretsEnv) upstreams(t *testing.T) {
	ctx := context.Background()
	pgAdmin := func(db string) *pgx.Conn {
		c, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", testenv.PostgresAddr, db))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// Dropped after the database (cleanups run last first).
	t.Cleanup(func() {
		c := pgAdmin("postgres")
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP ROLE IF EXISTS "+e.user()); err != nil {
			t.Errorf("drop role: %v", err)
		}
	})
	e.pgDB = testenv.PostgresDB(t)
	c := pgAdmin(e.pgDB)
	defer c.Close(ctx)
	for _, q := range []string{
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", e.user(), e.secret("SEC_PG_PASSWORD")),
		"CREATE TABLE people (id int, email text, card text)",
		fmt.Sprintf("INSERT INTO people VALUES (4242, '%s', '%s')", e.email(), e.card()),
		"GRANT SELECT ON people TO " + e.user(),
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", strings.SplitN(q, " PASSWORD", 2)[0], err)
		}
	}
	e.mariadb(t)
	e.redisACL(t)
}

func (e *secretsEnv) mariadb(t *testing.T) {
	e.myDB = mariadbDatabase(t)
	admin := mariadbAdmin(t, e.myDB)
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP USER IF EXISTS '" + e.user() + "'@'%'"); err != nil {
			t.Errorf("drop user: %v", err)
		}
	})
	for _, q := range []string{
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", e.user(), e.secret("SEC_MY_PASSWORD")),
		fmt.Sprintf("GRANT SELECT ON %s.* TO '%s'@'%%'", e.myDB, e.user()),
		"CREATE TABLE people (id int, email varchar(100), card varchar(32))",
		fmt.Sprintf("INSERT INTO people VALUES (4242, '%s', '%s')", e.email(), e.card()),
	} {
		if _, err := admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", strings.SplitN(q, " IDENTIFIED", 2)[0], err)
		}
	}
}

func (e *secretsEnv) redisACL(t *testing.T) {
	ctx := context.Background()
	rc := directRedis(t, testDB)
	t.Cleanup(func() {
		rc.Del(ctx, e.redisKey())
		rc.Do(ctx, "ACL", "DELUSER", e.user())
	})
	if err := rc.Do(ctx, "ACL", "SETUSER", e.user(), "reset", "on", ">"+e.secret("SEC_KV_PASSWORD"), "~sec:*", "+@all").Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	if err := rc.Set(ctx, e.redisKey(), "mail "+e.email()+" card "+e.card(), time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
}

// httpUpstream answers /people with the raw values, and checks that
// Airlock sends its own bearer token, never the caller's.
func (e *secretsEnv) httpUpstream(t *testing.T) {
	e.api = serveStandIn(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+upstreamCredentials["HTTP_BEARER"] {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/broken" {
			http.Error(w, "upstream failure", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id": 4242, "email": %q, "card": %q}`, e.email(), e.card())
	}))
}

// jwtIssuer publishes a signing key and signs a JWT with it, and another
// with a key it does not publish.
func (e *secretsEnv) jwtIssuer(t *testing.T) {
	var keys [2]*rsa.PrivateKey
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: keys[0].Public(), KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	e.jwks = serveStandIn(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(set)
	}))
	claims, _ := json.Marshal(map[string]any{"iss": "https://idp.secrets.test", "aud": "airlock", "sub": "u-" + e.suffix,
		"preferred_username": "jwt-user", "groups": []string{"developers"},
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})
	sign := func(k *rsa.PrivateKey) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k, KeyID: "k1"}},
			(&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			t.Fatal(err)
		}
		jws, err := signer.Sign(claims)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := jws.CompactSerialize()
		return out
	}
	e.jwt, e.forged = sign(keys[0]), sign(keys[1])
	for _, tok := range []struct{ jwt, what string }{{e.jwt, "jwt-user's JWT"}, {e.forged, "a forged JWT"}} {
		e.watched[tok.jwt] = tok.what
		e.watched[tok.jwt[strings.LastIndexByte(tok.jwt, '.')+1:]] = tok.what + "'s signature"
	}
}

func (e *secretsEnv) config() string {
	pgUp := func(user, password, db string) string {
		return fmt.Sprintf("{address: %s, database: %s, user: %s, password: \"${%s}\", tls: {mode: disable}}",
			testenv.PostgresAddr, db, user, password)
	}
	myUp := func(password string) string {
		return fmt.Sprintf("{address: %s, database: %s, user: %s, password: \"${%s}\", tls: {mode: disable}}",
			testenv.MariaDBAddr, e.myDB, e.user(), password)
	}
	kvUp := func(password string) string {
		return fmt.Sprintf("{address: %s, database: %d, user: %s, password: \"${%s}\"}", testenv.RedisAddr, testDB, e.user(), password)
	}
	return fmt.Sprintf(`
listen: {postgres: 127.0.0.1:0, mysql: 127.0.0.1:0, redis: 127.0.0.1:0, http: 127.0.0.1:0, admin: 127.0.0.1:0}
log: {level: debug}
identities:
  - {name: dev, groups: [developers], token_sha256: %s}
  - {name: agent, groups: [agents], token_sha256: %s}
oidc: {issuer: "https://idp.secrets.test", audience: airlock, jwks_url: "http://%s/keys"}
masking:
  detect:
    - {entity: email, strategy: partial}
    - {entity: payment_card, strategy: redact}
connections:
  - {name: pg, protocol: postgres, allow: [dev, agent, jwt-user], upstream: %s}
  # PostgreSQL here trusts local logins: the wrong password is never
  # checked, so the login fails on a database that does not exist.
  - {name: pg_bad, protocol: postgres, allow: [dev], upstream: %s}
  - {name: my, protocol: mysql, allow: [dev, agent], upstream: %s}
  - {name: my_bad, protocol: mysql, allow: [dev], upstream: %s}
  - {name: kv, protocol: redis, allow: [dev, agent, jwt-user], upstream: %s}
  - {name: kv_bad, protocol: redis, allow: [dev], upstream: %s}
  - {name: api, protocol: http, allow: [dev, agent], upstream: {url: "http://%s", credential: {bearer: "${HTTP_BEARER}"}}}
`, devTokenHash, identity.HashToken(agentToken), e.jwks.addr,
		pgUp(e.user(), "SEC_PG_PASSWORD", e.pgDB), pgUp(e.user(), "SEC_PG_WRONG", "nope_"+e.suffix),
		myUp("SEC_MY_PASSWORD"), myUp("SEC_MY_WRONG"), kvUp("SEC_KV_PASSWORD"), kvUp("SEC_KV_WRONG"), e.api.addr)
}

// TestSecretsEverywhere runs every engine's happy and failing paths with
// known secrets (caller tokens, wrong tokens, the upstream accounts'
// passwords, wrong upstream passwords, the HTTP upstream's bearer token)
// and values masking must mask, then searches everything Airlock wrote
// (every file under its directory, recordings decoded as well as raw, the
// store), its log at debug level, /metrics and everything its clients were
// told, and names each place one leaked. A value planted in a scratch file
// must be found, so that a search that finds nothing proves something.
func TestSecretsEverywhere(t *testing.T) {
	testenv.Need(t, "PostgreSQL", testenv.PostgresAddr)
	testenv.Need(t, "MariaDB", testenv.MariaDBAddr)
	testenv.Need(t, "Redis", testenv.RedisAddr)
	e := newSecretsEnv(t)
	e.upstreams(t)
	e.httpUpstream(t)
	e.jwtIssuer(t)
	in := startAirlock(t, e.config(), e.env...)

	e.postgres(t, in)
	e.mysql(t, in)
	e.redis(t, in)
	e.http(t, in)
	e.agents(t, in)
	metrics := in.metrics(t)
	in.stop() // every recording closed

	planted := "planted-Secret-" + e.suffix
	e.watched[planted] = "the value planted to prove the search"
	if err := os.MkdirAll(filepath.Join(in.dir, "scratch"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in.dir, "scratch", "planted.txt"), []byte("x "+planted+" x"), 0o600); err != nil {
		t.Fatal(err)
	}
	leaks := &leakSearch{watched: e.watched}
	leaks.search("the log", []byte(in.Logs()))
	leaks.search("/metrics", []byte(metrics))
	for client, b := range e.client {
		leaks.search("what "+client+" was told", b.Bytes())
	}
	files, decoded := leaks.walk(t, in.dir)
	want := "scratch/planted.txt: " + e.watched[planted]
	found := false
	for _, l := range leaks.found {
		if l == want {
			found = true
			continue
		}
		t.Errorf("leaked: %s", l)
	}
	if !found {
		t.Fatalf("the search missed the value planted in scratch/planted.txt: it proves nothing (found %v)", leaks.found)
	}
	if decoded < 5 || !strings.Contains(leaks.transcripts, "people") {
		t.Fatalf("decoded %d recordings, which do not show the statements run: the search of recordings proves nothing", decoded)
	}
	t.Logf("searched the log, /metrics, %d clients' answers and %d files (%d recordings decoded)", len(e.client), files, decoded)
}

// leakSearch finds the watched values in what it is given.
type leakSearch struct {
	watched     map[string]string
	found       []string
	transcripts string // the recordings decoded, to check they were read
}

func (l *leakSearch) search(where string, data []byte) {
	var hits []string
	for v, what := range l.watched {
		if bytes.Contains(data, []byte(v)) {
			hits = append(hits, where+": "+what)
		}
	}
	sort.Strings(hits)
	l.found = append(l.found, hits...)
}

// walk searches every file under dir, and each recording decoded too. It
// returns how many files it read and how many recordings it decoded.
func (l *leakSearch) walk(t *testing.T, dir string) (files, decoded int) {
	var transcripts strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		rel, _ := filepath.Rel(dir, p)
		l.search(rel, data)
		if _, herr := recording.ReadHeader(p); herr == nil {
			var out bytes.Buffer
			if _, err := recording.ReplayFile(&out, p, recording.ReplayOptions{JSON: true}); err != nil {
				t.Errorf("decode %s: %v", rel, err)
			}
			decoded++
			l.search(rel+" (decoded)", out.Bytes())
			transcripts.Write(out.Bytes())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	l.transcripts = transcripts.String()
	return files, decoded
}

func (e *secretsEnv) postgres(t *testing.T, in *instance) {
	ctx := context.Background()
	c := pgxConnect(t, in.url("dev", devToken, "pg", ""))
	var id int
	var email, card string
	if err := c.QueryRow(ctx, "SELECT id, email, card FROM people").Scan(&id, &email, &card); err != nil || id != 4242 {
		t.Fatalf("postgres: %v %d", err, id)
	}
	e.saw("postgres", "%d %s %s", id, email, card)
	for _, q := range []string{"SELECT 1/0", "SELECT * FROM no_such_table", "SELECT email::int FROM people"} {
		_, err := c.Exec(ctx, q)
		e.saw("postgres", "%s: %v", q, err)
	}
	c.Close(ctx)
	j := pgxConnect(t, in.url("jwt-user", e.jwt, "pg", ""))
	if err := j.QueryRow(ctx, "SELECT id, email, card FROM people").Scan(&id, &email, &card); err != nil {
		t.Fatalf("postgres with a JWT: %v", err)
	}
	e.saw("postgres", "jwt: %d %s %s", id, email, card)
	j.Close(ctx)
	for _, url := range []string{
		in.url("jwt-user", e.forged, "pg", ""),
		in.url("dev", e.wrongToken(), "pg", ""),
		in.url("dev", devToken, "pg_bad", ""),
		in.url("dev", devToken, "no_such_connection", ""),
	} {
		_, err := pgxConnectErr(url)
		if err == nil {
			t.Fatalf("postgres: a login that must fail succeeded")
		}
		e.saw("postgres", "login: %v", err)
	}
}

func (e *secretsEnv) mysql(t *testing.T, in *instance) {
	open := func(token, conn string) *sql.DB {
		cfg := driver.NewConfig()
		cfg.Net, cfg.Addr, cfg.User, cfg.Passwd, cfg.DBName = "tcp", in.addr("mysql"), "dev", token, conn
		cfg.Timeout = 10 * time.Second
		return openDriver(t, cfg)
	}
	db := open(devToken, "my")
	var id int
	var email, card string
	if err := db.QueryRow("SELECT id, email, card FROM people").Scan(&id, &email, &card); err != nil || id != 4242 {
		t.Fatalf("mysql: %v %d", err, id)
	}
	e.saw("mysql", "%d %s %s", id, email, card)
	for _, q := range []string{"SELECT * FROM no_such_table", "SELECT email FROM people WHERE nope = 1"} {
		_, err := db.Exec(q)
		e.saw("mysql", "%s: %v", q, err)
	}
	for _, bad := range []struct{ token, conn string }{{e.wrongToken(), "my"}, {devToken, "my_bad"}} {
		err := open(bad.token, bad.conn).Ping()
		if err == nil {
			t.Fatalf("mysql: a login that must fail succeeded (%s)", bad.conn)
		}
		e.saw("mysql", "login: %v", err)
	}
}

func (e *secretsEnv) redis(t *testing.T, in *instance) {
	c := dialRaw(t, in.addr("redis"))
	for _, cmd := range [][]string{
		{"AUTH", "dev@kv", e.wrongToken()},
		{"AUTH", "jwt-user@kv", e.forged},
		{"AUTH", "jwt-user@kv", e.jwt},
		{"AUTH", "dev@kv", devToken},
		{"GET", e.redisKey()},
		{"HGETALL", e.redisKey()},
		{"GET", "not:" + e.suffix},
	} {
		e.saw("redis", "%s: %s", cmd[0], c.do(cmd...))
	}
	if got := e.client["redis"].String(); !strings.Contains(got, "GET: $") {
		t.Fatalf("redis: no value read:\n%s", got)
	}
	bad := dialRaw(t, in.addr("redis"))
	if r := bad.do("AUTH", "dev@kv_bad", devToken); !strings.HasPrefix(r, "-") {
		t.Fatalf("redis: a wrong upstream password was accepted: %s", r)
	} else {
		e.saw("redis", "kv_bad: %s", r)
	}
}

func (e *secretsEnv) http(t *testing.T, in *instance) {
	base := "http://" + in.addr("http") + "/proxy/api"
	for _, rq := range []struct{ path, token string }{
		{"/people", devToken}, {"/people", e.wrongToken()}, {"/broken", devToken}, {"/people", ""},
	} {
		req, _ := http.NewRequest("GET", base+rq.path, nil)
		if rq.token != "" {
			req.Header.Set("Authorization", "Bearer "+rq.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		e.saw("the HTTP proxy's client", "%s %d %v %s", rq.path, resp.StatusCode, resp.Header, body)
		if rq.path == "/people" && rq.token == devToken && (resp.StatusCode != 200 || !bytes.Contains(body, []byte("4242"))) {
			t.Fatalf("http: %d %s", resp.StatusCode, body)
		}
	}
}

func (e *secretsEnv) agents(t *testing.T, in *instance) {
	a := &agentInstance{instance: in, base: "http://" + in.addr("http")}
	as := func(token string, c call) call {
		c.token = token
		return c
	}
	for _, c := range []call{
		queryCall("pg", "SELECT id, email, card FROM people"),
		queryCall("my", "SELECT id, email, card FROM people"),
		queryCall("pg", "SELECT 1/0"),
		as(devToken, queryCall("pg_bad", "SELECT 1")),
		as(devToken, queryCall("my_bad", "SELECT 1")),
		as(e.jwt, queryCall("pg", "SELECT id, email, card FROM people")),
		as(e.forged, queryCall("pg", "SELECT 1")),
	} {
		r := a.do(t, c)
		e.saw("the agent API's client", "%s %d %v %s", c.path, r.status, r.header, r.body)
	}
	wrong := queryCall("pg", "SELECT 1")
	wrong.token = e.wrongToken()
	r := a.do(t, wrong)
	e.saw("the agent API's client", "wrong token: %d %v %s", r.status, r.header, r.body)
	// Rows for the agent's token on pg and my, and for the JWT on pg.
	if got := e.client["the agent API's client"].String(); strings.Count(got, `"4242"`) != 3 {
		t.Fatalf("agent API: want three answers with rows:\n%s", got)
	}
	cs := a.mcpConnect(t, agentToken, "2025-11-25", nil)
	for _, args := range []map[string]any{
		{"connection": "pg", "sql": "SELECT id, email, card FROM people"},
		{"connection": "kv", "command": []string{"GET", e.redisKey()}},
		{"connection": "pg", "sql": "SELECT 1/0"},
	} {
		res, _ := callTool(t, cs, "query", args)
		e.saw("the MCP client", "%v: %s", args["connection"], resultText(res))
	}
}
