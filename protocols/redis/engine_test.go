package redis

import (
	"bufio"
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/masking"
	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/redis/resp"
	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/session"
)

var testMasking = &masking.Config{
	Detect:  []masking.DetectRule{{Entity: "email", Strategy: masking.Partial}},
	Columns: []masking.ColumnRule{{Name: "secret*", Strategy: masking.Redact}},
}

// TestRepliesFromAScriptedUpstream drives what a real Redis seldom sends:
// cluster redirections, attributes, a push ahead of a reply, a value too
// large to mask inside an array; and checks what the recording keeps.
func TestRepliesFromAScriptedUpstream(t *testing.T) {
	big := strings.Repeat("x", 3<<10)
	up := startFakeUpstream(t, func(args []string) string {
		switch strings.Join(args, " ") {
		case "GET moved":
			return "-MOVED 3999 10.0.0.2:6381\r\n"
		case "GET attr":
			return "|1\r\n+popularity\r\n,0.5\r\n$15\r\nann@example.com\r\n"
		case "GET pushed":
			return ">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nk:1\r\n$2\r\nok\r\n"
		case "LRANGE big 0 -1":
			return "*3\r\n$1\r\na\r\n$3072\r\n" + big + "\r\n$1\r\nb\r\n"
		case "HGETALL h":
			return "*4\r\n$8\r\nsecret_x\r\n$3\r\nabc\r\n$4\r\nmail\r\n$14\r\nbo@example.com\r\n"
		}
		return "+OK\r\n"
	})
	recs := &memRecorders{}
	g := testGateway(t, up.ln.Addr().String(), testMasking, recs)
	_, addr := serveEngine(t, g, Settings{MaxMaskedValue: 1 << 10})
	c := dial(t, addr)
	if got := c.do("AUTH", "dev", "dev-token"); got != "+OK\r\n" {
		t.Fatalf("AUTH: %q", got)
	}
	for _, tc := range []struct{ cmd, want string }{
		{"GET moved", "-ERR Airlock does not follow cluster redirections (MOVED 3999 10.0.0.2:6381): cluster upstreams are not supported\r\n"},
		{"GET attr", "|1\r\n+popularity\r\n,0.5\r\n$16\r\na***@example.com\r\n"},
		{"GET pushed", ">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nk:1\r\n"},
		{"", "$2\r\nok\r\n"}, // the reply that followed the push
		{"LRANGE big 0 -1", "*3\r\n$1\r\na\r\n-ERR Airlock withheld a value of 3072 bytes: values this large cannot be masked (redis.max_masked_value)\r\n$1\r\nb\r\n"},
		{"HGETALL h", "*4\r\n$8\r\nsecret_x\r\n$10\r\n[redacted]\r\n$4\r\nmail\r\n$16\r\nb***@example.com\r\n"},
		{"AUTH dev dev-token", "+OK\r\n"},
	} {
		if tc.cmd != "" {
			c.send(strings.Fields(tc.cmd)...)
		}
		if got := c.read(); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.cmd, got, tc.want)
		}
	}
	rec := recs.last()
	if got := rec.list("command "); !slices.Contains(got, "AUTH dev ***") || slices.Contains(got, "AUTH dev dev-token") {
		t.Errorf("recorded commands: %q", got)
	}
	replies := rec.list("reply ")
	for _, want := range []string{
		"push 2 [invalidate|k:1]",
		"array 3 [a|[withheld]|b]",
		"array 4 [secret_x|[redacted]|mail|b***@example.com]",
		"bulk 1 [a***@example.com]",
	} {
		if !slices.Contains(replies, want) {
			t.Errorf("recorded replies lack %q: %q", want, replies)
		}
	}
}

// TestReplyNotRecordedNotSent ends the session when the recording refuses
// a reply, and the client never gets the reply.
func TestReplyNotRecordedNotSent(t *testing.T) {
	up := startFakeUpstream(t, func([]string) string { return "$6\r\nsecret\r\n" })
	g := testGateway(t, up.ln.Addr().String(), nil, &memRecorders{failReply: true})
	_, addr := serveEngine(t, g, Settings{})
	c := dial(t, addr)
	c.do("AUTH", "dev", "dev-token")
	if got := c.do("GET", "k"); got != "-ERR Airlock could not record a reply; the session is closed so nothing passes unrecorded\r\n" {
		t.Fatalf("unrecorded reply: %q", got)
	}
	if _, err := c.dec.Next(); err == nil {
		t.Fatal("the session goes on")
	}
}

// TestPipelineOrderWithLocalReplies checks that replies Airlock writes
// itself keep their place behind the upstream's replies to earlier
// commands, however many are in flight.
func TestPipelineOrderWithLocalReplies(t *testing.T) {
	up := startFakeUpstream(t, func(args []string) string { return "$" + itoa(len(args[1])) + "\r\n" + args[1] + "\r\n" })
	g := testGateway(t, up.ln.Addr().String(), nil, nil)
	_, addr := serveEngine(t, g, Settings{})
	c := dial(t, addr)
	var batch []byte
	batch = resp.AppendCommand(batch, "AUTH", "dev", "dev-token")
	var want []string
	want = append(want, "+OK\r\n")
	for i := range 300 {
		v := "v" + itoa(i)
		switch i % 3 {
		case 0:
			batch = resp.AppendCommand(batch, "ECHO", v)
			want = append(want, "$"+itoa(len(v))+"\r\n"+v+"\r\n")
		case 1:
			batch = resp.AppendCommand(batch, "SELECT", "9") // refused by the engine
			want = append(want, "-NOPERM connection \"cache\" is fixed to database 11\r\n")
		case 2:
			batch = resp.AppendCommand(batch, "MODULE", "LOAD", "/x.so") // refused by policy
			want = append(want, "")
		}
	}
	if _, err := c.conn.Write(batch); err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		got := c.read()
		if w == "" {
			if !strings.HasPrefix(got, "-NOPERM Airlock refused the command") {
				t.Fatalf("reply %d: %q", i, got)
			}
			continue
		}
		if got != w {
			t.Fatalf("reply %d: got %q, want %q", i, got, w)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestRoute(t *testing.T) {
	one := &Engine{gateway: testGateway(t, "127.0.0.1:1", nil, nil)}
	for _, tc := range []struct{ user, identity, connection string }{
		{"dev", "dev", "cache"},
		{"dev@cache", "dev", "cache"},
		{"ann@example.com", "ann@example.com", "cache"},
		{"ann@example.com@cache", "ann@example.com", "cache"},
		{"default", "", "cache"},
		{"", "", "cache"},
		{"@cache", "", "cache"},
	} {
		id, conn := one.route(tc.user)
		if id != tc.identity || conn != tc.connection {
			t.Errorf("route(%q) = %q, %q; want %q, %q", tc.user, id, conn, tc.identity, tc.connection)
		}
	}
}

func TestParseHelloArgs(t *testing.T) {
	for _, tc := range []struct {
		args string
		want helloArgs
		err  string
	}{
		{"HELLO", helloArgs{}, ""},
		{"HELLO 3", helloArgs{proto: 3}, ""},
		{"HELLO 2 AUTH u p SETNAME n", helloArgs{proto: 2, auth: true, user: "u", pass: "p", name: "n", setName: true}, ""},
		{"HELLO 4", helloArgs{}, msgNoProto},
		{"HELLO x", helloArgs{}, "ERR Protocol version is not an integer or out of range"},
		{"HELLO 3 AUTH u", helloArgs{proto: 3}, "ERR Syntax error in HELLO option 'AUTH'"},
		{"HELLO 3 SETNAME a\x01b", helloArgs{}, msgBadName},
	} {
		var args [][]byte
		for _, a := range strings.Fields(tc.args) {
			args = append(args, []byte(a))
		}
		got, err := parseHelloArgs(args)
		if err != tc.err || (err == "" && got != tc.want) {
			t.Errorf("%s: got %+v %q, want %+v %q", tc.args, got, err, tc.want, tc.err)
		}
	}
}

func TestShapeOf(t *testing.T) {
	args := func(s string) [][]byte {
		var out [][]byte
		for _, a := range strings.Fields(s) {
			out = append(out, []byte(a))
		}
		return out
	}
	for _, tc := range []struct {
		cmd   string
		proto resp.Proto
		pairs int
		names []string
	}{
		{"HGETALL h", resp.RESP2, 1, nil},
		{"HGETALL h", resp.RESP3, 0, nil},
		{"HRANDFIELD h 3 WITHVALUES", resp.RESP3, 2, nil},
		{"HSCAN h 0 MATCH *", resp.RESP2, 2, nil},
		{"HSCAN h 0 NOVALUES", resp.RESP2, 0, nil},
		{"HMGET h a b", resp.RESP2, 0, []string{"a", "b"}},
		{"HGET h a", resp.RESP3, 0, []string{"a"}},
		{"GET k", resp.RESP2, 0, nil},
	} {
		name := strings.ToUpper(strings.Fields(tc.cmd)[0])
		sh := shapeOf(name, args(tc.cmd), tc.proto)
		if sh.pairs != tc.pairs || !slices.Equal(sh.names, tc.names) {
			t.Errorf("%s (RESP%d): %+v", tc.cmd, tc.proto, sh)
		}
	}
}

func TestPendingQueue(t *testing.T) {
	var q pendingQueue
	if q.pushLocal([]byte("a")) {
		t.Fatal("a reply with nothing owed was queued")
	}
	q.push(pending{kind: pkReply})
	if !q.pushLocal([]byte("b")) || !q.pushLocal([]byte("c")) {
		t.Fatal("a reply behind an owed one was not queued")
	}
	q.push(pending{kind: pkPubSub, confirms: "subscribe", expect: 2})
	if got := q.takeLocals(nil); len(got) != 0 {
		t.Fatalf("locals taken before the owed reply: %q", got)
	}
	q.pop()
	if got := q.takeLocals(nil); len(got) != 2 || string(got[0]) != "b" || string(got[1]) != "c" {
		t.Fatalf("locals: %q", got)
	}
	if q.confirm("psubscribe") || !q.confirm("subscribe") || q.owed != 1 || !q.confirm("subscribe") || q.owed != 0 {
		t.Fatalf("confirmations: owed %d", q.owed)
	}
	if _, ok := q.peek(); ok {
		t.Fatal("queue not empty")
	}
}

// TestExecutorAgainstRedis runs commands as an agent frontend does, through
// the session flow, against the local Redis.
func TestExecutorAgainstRedis(t *testing.T) {
	needRedis(t)
	g := testGateway(t, redisAddr(), testMasking, nil)
	e, _ := serveEngine(t, g, Settings{})
	ctx := context.Background()
	flow, err := g.Admit(ctx, sessionCaller())
	if err != nil {
		t.Fatal(err)
	}
	if err := flow.Start(); err != nil {
		t.Fatal(err)
	}
	defer flow.Close("done")
	r, err := e.Dial(ctx, flow)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	key := uniqueKey("airlock_exec")
	defer cleanupKeys(t, key)
	sink := &rowSink{}
	run := func(args ...string) (protocols.Decision, error) {
		sink.cols, sink.rows = nil, nil
		return flow.Execute(ctx, r, &protocols.Command{Protocol: protocols.Redis, Args: args, Kind: "command"}, sink)
	}
	if _, err := run("HSET", key, "secret_pin", "1234", "email", "eve@example.com", "n", "5"); err != nil {
		t.Fatal(err)
	}
	if _, err := run("HGETALL", key); err != nil {
		t.Fatal(err)
	}
	if len(sink.rows) != 1 || strings.Join(sink.cols, ",") != "secret_pin,email,n" ||
		strings.Join(sink.rows[0], ",") != "[redacted],e***@example.com,5" {
		t.Fatalf("HGETALL: %v %v", sink.cols, sink.rows)
	}
	if _, err := run("LPUSH", key+":l", "a", "b"); err != nil {
		t.Fatal(err)
	}
	defer cleanupKeys(t, key+":l")
	if _, err := run("LRANGE", key+":l", "0", "-1"); err != nil || len(sink.rows) != 2 || sink.rows[0][0] != "b" {
		t.Fatalf("LRANGE: %v %v", sink.rows, err)
	}
	if dec, err := run("FLUSHALL"); err != nil || dec.Action == protocols.Allow {
		t.Fatalf("FLUSHALL: %v %v", dec, err)
	}
	if _, err := run("SUBSCRIBE", "ch"); err == nil || !strings.Contains(err.Error(), "not available") {
		t.Fatalf("SUBSCRIBE: %v", err)
	}
	if _, err := run("SELECT", "5"); err == nil || !strings.Contains(err.Error(), "fixed to database 11") {
		t.Fatalf("SELECT: %v", err)
	}
	if _, err := run("INCR", key); err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Fatalf("INCR of a hash: %v", err)
	}
}

type rowSink struct {
	cols []string
	rows [][]string
}

func (s *rowSink) ForwardColumns(cols []protocols.Column) error {
	for _, c := range cols {
		s.cols = append(s.cols, c.Name)
	}
	return nil
}

func (s *rowSink) ForwardRow(values [][]byte, _ bool) error {
	row := make([]string, len(values))
	for i, v := range values {
		row[i] = string(v)
	}
	s.rows = append(s.rows, row)
	return nil
}

func needRedis(t testing.TB) { testenv.Need(t, "Redis", testenv.RedisAddr) }

func redisAddr() string { return testenv.RedisAddr }

func sessionCaller() session.Caller {
	return session.Caller{Protocol: protocols.Redis, User: "dev", Secret: "dev-token", Connection: "cache", Local: true}
}

func uniqueKey(prefix string) string { return testenv.Unique(prefix) }

// cleanupKeys deletes keys from the test database of the local Redis.
func cleanupKeys(t testing.TB, keys ...string) {
	conn, err := net.Dial("tcp", testenv.RedisAddr)
	if err != nil {
		t.Errorf("delete test keys: %v", err)
		return
	}
	defer conn.Close()
	out := resp.AppendCommand(nil, "SELECT", strconv.Itoa(testDatabase))
	out = resp.AppendCommand(out, append([]string{"DEL"}, keys...)...)
	_, _ = conn.Write(out)
	d := resp.NewReplyDecoder(bufio.NewReader(conn), resp.ReplyOptions{})
	for range 2 {
		if _, err := readValue(d, 1<<10); err != nil {
			t.Errorf("delete test keys: %v", err)
		}
	}
}

// TestPipelineOfAThousandAgainstRedis sends a thousand commands in one
// write, one of them refused by policy in the middle: every reply comes in
// its place, the refusal too, and the recording keeps each command.
func TestPipelineOfAThousandAgainstRedis(t *testing.T) {
	needRedis(t)
	recs := &memRecorders{}
	g := testGateway(t, redisAddr(), testMasking, recs)
	_, addr := serveEngine(t, g, Settings{})
	c := dial(t, addr)
	if got := c.do("AUTH", "dev", "dev-token"); got != "+OK\r\n" {
		t.Fatalf("AUTH: %q", got)
	}
	const n, refused = 1000, 500
	var batch []byte
	for i := range n {
		if i == refused {
			batch = resp.AppendCommand(batch, "MODULE", "LOAD", "/x.so")
			continue
		}
		batch = resp.AppendCommand(batch, "ECHO", "v"+itoa(i))
	}
	if _, err := c.conn.Write(batch); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		got := c.read()
		if i == refused {
			if !strings.HasPrefix(got, "-NOPERM Airlock refused the command") {
				t.Fatalf("reply %d: %q", i, got)
			}
			continue
		}
		v := "v" + itoa(i)
		if want := "$" + itoa(len(v)) + "\r\n" + v + "\r\n"; got != want {
			t.Fatalf("reply %d: got %q, want %q", i, got, want)
		}
	}
	if got := c.do("ECHO", "end"); got != "$3\r\nend\r\n" {
		t.Fatalf("after the pipeline: %q", got)
	}
	cmds := recs.last().list("command ")
	// The login's AUTH is no command of the session.
	if len(cmds) != n+1 || cmds[refused] != "MODULE LOAD /x.so" || cmds[n-1] != "ECHO v999" {
		t.Errorf("recorded %d commands, around the refusal %q", len(cmds), cmds[min(refused, len(cmds)-1):min(refused+3, len(cmds))])
	}
}

// TestNewCommand checks the session flow's view of a command's arguments,
// small (views of one string) and large, few and many, empty ones too, and
// that they do not change when the scratch buffer is reused.
func TestNewCommand(t *testing.T) {
	var buf []byte
	for _, args := range [][]string{
		{"GET", "k"},
		{"SET", "k", ""},
		{"MSET", "a", "1", "b", "2", "c", "3"},
		{"SET", "big", strings.Repeat("v", smallCommand+1)},
		{"MSET", "a", strings.Repeat("v", smallCommand), "b", "2", "c"},
	} {
		raw := make([][]byte, len(args))
		for i, a := range args {
			raw[i] = []byte(a)
		}
		cmd := newCommand(raw, &buf)
		again := newCommand([][]byte{[]byte("ECHO"), []byte(strings.Repeat("z", 40))}, &buf)
		if !slices.Equal(cmd.Args, args) || cmd.Protocol != protocols.Redis || cmd.Kind != "command" {
			t.Errorf("newCommand(%.40q) = %+v", args, cmd)
		}
		if again.Args[1] != strings.Repeat("z", 40) {
			t.Errorf("second command: %q", again.Args)
		}
	}
}

// TestNameCache checks that command names come back in upper case, the
// same string for the same name, and that the cache stays bounded.
func TestNameCache(t *testing.T) {
	var c nameCache
	if got := c.upper([]byte("get")); got != "GET" {
		t.Fatalf("upper(get) = %q", got)
	}
	if got := c.upper([]byte("GeT")); got != "GET" {
		t.Fatalf("upper(GeT) = %q", got)
	}
	if got := c.upper([]byte(strings.Repeat("x", 25))); got != "" {
		t.Fatalf("a long name: %q", got)
	}
	for i := range 3 * maxNames {
		if got, want := c.upper([]byte("cmd"+itoa(i))), "CMD"+itoa(i); got != want {
			t.Fatalf("upper = %q, want %q", got, want)
		}
	}
	if len(c.m) > maxNames {
		t.Errorf("%d names kept, want at most %d", len(c.m), maxNames)
	}
	if n := testing.AllocsPerRun(100, func() { c.upper([]byte("set")) }); n != 0 {
		t.Errorf("a known name costs %v allocations", n)
	}
}
