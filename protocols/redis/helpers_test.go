package redis

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/approvals/policy"
	"github.com/airlock-gw/airlock/masking"
	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/protocols/redis/resp"
	"github.com/airlock-gw/airlock/session"
	sqlriskredis "github.com/airlock-gw/airlock/sqlrisk/redis"
)

// testDatabase is the database of the local Redis the tests use, with
// keys of their own.
const testDatabase = 11

// testAuth accepts fixed name/token pairs, and a token alone for its owner.
type testAuth map[string]string

func (a testAuth) Authenticate(_ context.Context, name, secret string) (protocols.Identity, error) {
	for n, tok := range a {
		if tok == secret && (name == "" || name == n) {
			return protocols.Identity{Name: n, Method: "token"}, nil
		}
	}
	return protocols.Identity{}, protocols.ErrAuthFailed
}

// classifier is sqlrisk's Redis table, the classifier the gateway routes
// Redis commands to.
type classifier struct{ a *sqlriskredis.Analyzer }

func (c classifier) Classify(cmd *protocols.Command) *protocols.Classification {
	return c.a.Analyze(cmd)
}

// memRecorder keeps what the engine records, for assertions.
type memRecorder struct {
	mu        sync.Mutex
	events    []string
	failReply bool
}

func (r *memRecorder) add(s string) error {
	r.mu.Lock()
	r.events = append(r.events, s)
	r.mu.Unlock()
	return nil
}

func (r *memRecorder) list(prefix string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if v, ok := strings.CutPrefix(e, prefix); ok {
			out = append(out, v)
		}
	}
	return out
}

func (r *memRecorder) Command(c *protocols.Command, red string) error { return r.add("command " + red) }
func (r *memRecorder) Decision(d protocols.Decision) error {
	return r.add("decision " + string(d.Action))
}
func (r *memRecorder) Columns([]protocols.Column) error           { return nil }
func (r *memRecorder) Row([][]byte) error                         { return nil }
func (r *memRecorder) Parameters(string, []protocols.Param) error { return nil }
func (r *memRecorder) Exchange(protocols.Exchange) error          { return nil }
func (r *memRecorder) Close(string) error                         { return nil }
func (r *memRecorder) Result(res protocols.Result) error {
	return r.add("result " + strconv.FormatInt(res.Rows, 10) + " " + res.Error)
}
func (r *memRecorder) Reply(rep protocols.Reply) error {
	if r.failReply {
		return errors.New("disk full")
	}
	vals := make([]string, len(rep.Values))
	for i, v := range rep.Values {
		vals[i] = string(v)
		if v == nil {
			vals[i] = "nil"
		}
	}
	return r.add("reply " + rep.Kind + " " + strconv.FormatInt(rep.Count, 10) + " [" + strings.Join(vals, "|") + "]")
}

type memRecorders struct {
	mu        sync.Mutex
	recs      []*memRecorder
	failReply bool
}

func (f *memRecorders) Open(protocols.SessionInfo) (protocols.Recorder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := &memRecorder{failReply: f.failReply}
	f.recs = append(f.recs, r)
	return r, nil
}

func (f *memRecorders) last() *memRecorder {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.recs[len(f.recs)-1]
}

// fakeUpstream is a scripted Redis: it answers HELLO and SELECT as Redis
// does and every other command with what reply returns for it.
type fakeUpstream struct {
	ln    net.Listener
	reply func(args []string) string
}

func startFakeUpstream(t *testing.T, reply func(args []string) string) *fakeUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeUpstream{ln: ln, reply: reply}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(conn)
		}
	}()
	return f
}

func (f *fakeUpstream) serve(conn net.Conn) {
	defer conn.Close()
	d := resp.NewRequestDecoder(bufio.NewReader(conn), resp.RequestLimits{})
	w := bufio.NewWriter(conn)
	for {
		args, _, err := d.Next()
		if err != nil {
			return
		}
		words := make([]string, len(args))
		for i, a := range args {
			words[i] = string(a)
		}
		var out string
		switch strings.ToUpper(words[0]) {
		case "HELLO":
			p := resp.RESP2
			if len(words) > 1 && words[1] == "3" {
				p = resp.RESP3
			}
			out = string(appendHello(nil, helloInfo{version: "7.0.99", mode: "standalone", role: "master", id: 7}, p))
		case "SELECT":
			out = "+OK\r\n"
		default:
			out = f.reply(words)
		}
		if _, err := w.WriteString(out); err != nil {
			return
		}
		if err := w.Flush(); err != nil {
			return
		}
	}
}

// testGateway is a gateway with one Redis connection named cache in front
// of upstream, for identities dev (token dev-token) and ops (ops-token).
func testGateway(t testing.TB, upstream string, mask *masking.Config, recs *memRecorders) *session.Gateway {
	t.Helper()
	pol, err := policy.New(policy.Config{Rules: map[string]string{"reach.*": "deny"}}, policy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	conn := &protocols.Connection{Name: "cache", Protocol: protocols.Redis, Allow: protocols.Principals{"dev", "ops"},
		DefaultIdentity: "dev", Policy: pol, Upstream: &Upstream{Address: upstream, Database: testDatabase, TLS: UpstreamTLS{Mode: "disable"}}}
	if mask != nil {
		src, err := masking.New(*mask, "cache", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		conn.Masking = src
	}
	o := session.Options{Auth: testAuth{"dev": "dev-token", "ops": "ops-token"},
		Connections: map[string]*protocols.Connection{"cache": conn}, Classifier: classifier{sqlriskredis.New()},
		Log: slog.New(slog.DiscardHandler)}
	if recs != nil {
		o.Recorders = recs
	}
	g, err := session.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// serveEngine runs an engine with set on a loopback port and returns its
// address.
func serveEngine(t testing.TB, g *session.Gateway, set Settings) (*Engine, string) {
	t.Helper()
	e := New()
	e.set = set.withDefaults()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.Serve(ctx, ln, engine.Deps{Gateway: g, HandshakeTimeout: 10 * time.Second})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return e, ln.Addr().String()
}

// client is a raw client connection whose replies are read as bytes.
type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	dec  *resp.ReplyDecoder
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReaderSize(conn, 1<<16)
	return &client{t: t, conn: conn, r: r, dec: resp.NewReplyDecoder(r, resp.ReplyOptions{ChunkSize: 4 << 20})}
}

func (c *client) send(args ...string) {
	c.t.Helper()
	if _, err := c.conn.Write(resp.AppendCommand(nil, args...)); err != nil {
		c.t.Fatal(err)
	}
}

// read returns one whole reply's bytes as received.
func (c *client) read() string {
	c.t.Helper()
	var b strings.Builder
	for {
		tok, err := c.dec.Next()
		if err != nil {
			c.t.Fatalf("read reply: %v (so far %q)", err, b.String())
		}
		b.Write(tok.Raw)
		if tok.Complete {
			return b.String()
		}
	}
}

func (c *client) do(args ...string) string {
	c.t.Helper()
	c.send(args...)
	return c.read()
}
