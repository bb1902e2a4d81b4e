package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/protocols/transport"
	"github.com/airlock-gw/airlock/session"
)

// lineEngine is a whole engine for a made-up line protocol, to show that an
// engine is only its codec and its state machine: everything else (who
// may connect, what may run, holds, masking, recording, metrics) is the
// session flow's.
//
// Client:   LOGIN user token connection   then   Q text   ...
// Upstream: Q text  →  COLS a,b / ROW x,y ... / END n   or   ERR msg
// Client gets OK, ROW lines, END n, or ERR reason.
type lineEngine struct{ upstream string }

func (e *lineEngine) Protocol() protocols.Protocol        { return "line" }
func (e *lineEngine) Configure(engine.Decode) error       { return nil }
func (e *lineEngine) Upstream(engine.Decode) (any, error) { return e.upstream, nil }
func (e *lineEngine) Serve(ctx context.Context, ln net.Listener, d engine.Deps) error {
	srv := &transport.Server{Handler: func(ctx context.Context, c net.Conn, a *transport.Admission) { e.session(ctx, c, a, d.Gateway) }}
	err := srv.Serve(ctx, ln)
	srv.Wait()
	return err
}

var _ engine.Engine = (*lineEngine)(nil)

func (e *lineEngine) session(ctx context.Context, c net.Conn, a *transport.Admission, g *session.Gateway) {
	in := bufio.NewReader(c)
	login, _ := in.ReadString('\n')
	f := strings.Fields(login)
	if len(f) != 4 || f[0] != "LOGIN" {
		fmt.Fprintf(c, "ERR expected LOGIN\n")
		return
	}
	flow, err := g.Admit(ctx, session.Caller{Protocol: "line", User: f[1], Secret: protocols.Secret(f[2]), Connection: f[3],
		Peer: c.RemoteAddr().String(), Local: transport.IsLocal(c.RemoteAddr())})
	if err != nil {
		fmt.Fprintf(c, "ERR %v\n", err)
		return
	}
	a.Authenticated()
	up, err := net.Dial("tcp", flow.Conn.Upstream.(string))
	if err != nil {
		flow.Abort(err)
		fmt.Fprintf(c, "ERR upstream unreachable\n")
		return
	}
	defer up.Close()
	if err := flow.Start(); err != nil {
		fmt.Fprintf(c, "ERR %v\n", err)
		return
	}
	fmt.Fprintf(c, "OK\n")
	reason := e.commands(ctx, flow, in, c, up)
	flow.Close(reason)
}

// lineSink forwards rows to the client.
type lineSink struct{ w net.Conn }

func (s lineSink) ForwardRow(values [][]byte, _ bool) error {
	_, err := fmt.Fprintf(s.w, "ROW %s\n", bytes.Join(values, []byte(",")))
	return err
}

func (e *lineEngine) commands(ctx context.Context, flow *session.Session, in *bufio.Reader, c, up net.Conn) string {
	res := flow.Results(lineSink{c})
	upIn := bufio.NewReader(up)
	for {
		line, err := in.ReadString('\n')
		if err != nil {
			return "client disconnected"
		}
		text := strings.TrimPrefix(strings.TrimSpace(line), "Q ")
		start := time.Now()
		dec, err := flow.Check(ctx, &protocols.Command{Protocol: "line", Text: text, Kind: "query"})
		if err != nil {
			return "check failed"
		}
		if dec.Action != protocols.Allow {
			fmt.Fprintf(c, "ERR %s\n", dec.Reason)
			continue
		}
		fmt.Fprintf(up, "Q %s\n", text)
		if err := relayResult(upIn, c, res, start); err != nil {
			return err.Error()
		}
		res.Done(start)
	}
}

func relayResult(upIn *bufio.Reader, c net.Conn, res *session.Results, start time.Time) error {
	for {
		line, err := upIn.ReadString('\n')
		if err != nil {
			return errors.New("upstream closed")
		}
		kind, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch kind {
		case "COLS":
			var cols []protocols.Column
			for _, n := range strings.Split(rest, ",") {
				cols = append(cols, protocols.Column{Name: n, Type: protocols.TypeText})
			}
			if err := res.Begin(cols, start); err != nil {
				return err
			}
		case "ROW":
			if err := res.Row(bytes.Split([]byte(rest), []byte(","))); err != nil {
				return err
			}
		case "END":
			n, _ := strconv.ParseInt(rest, 10, 64)
			fmt.Fprintf(c, "END %d\n", n)
			return res.End(protocols.Result{Tag: "END", Rows: n}, start)
		}
	}
}

// fakeUpstream answers every query with two rows, one holding an e-mail.
func fakeUpstream(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				in := bufio.NewScanner(c)
				for in.Scan() {
					fmt.Fprintf(c, "COLS id,email\nROW 1,ada@example.com\nROW 2,none\nEND 2\n")
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// Fakes of the policy side, as the session package's own tests use.
type auth struct{}

func (auth) Authenticate(_ context.Context, name, secret string) (protocols.Identity, error) {
	if name == "alice" && secret == "alice-token" {
		return protocols.Identity{Name: name}, nil
	}
	return protocols.Identity{}, protocols.ErrAuthFailed
}

type classifier struct{}

func (classifier) Classify(cmd *protocols.Command) *protocols.Classification {
	if strings.Contains(cmd.Text, "DROP") {
		return &protocols.Classification{Risk: protocols.RiskCritical, Rules: []string{"schema.drop"}, Redacted: cmd.Text}
	}
	return &protocols.Classification{Redacted: cmd.Text}
}

type policy struct{}

func (policy) Decide(_ protocols.Identity, c *protocols.Classification) protocols.Decision {
	if c.Risk == protocols.RiskCritical {
		return protocols.Decision{Action: protocols.Deny, Risk: c.Risk, Rules: c.Rules, Reason: "denied by policy"}
	}
	return protocols.Decision{Action: protocols.Allow, Risk: c.Risk}
}

type masker struct{}

func (masker) For(protocols.Identity) protocols.Masker { return masker{} }
func (masker) Text(b []byte) []byte                    { return b }
func (masker) Plan([]protocols.Column) protocols.RowMasker {
	return rowMasker{}
}

type rowMasker struct{}

func (rowMasker) MaskRow(v [][]byte) bool {
	changed := false
	for i := range v {
		if bytes.IndexByte(v[i], '@') >= 0 {
			v[i], changed = []byte("[email]"), true
		}
	}
	return changed
}

type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(s string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, s)
	return nil
}
func (r *recorder) Open(protocols.SessionInfo) (protocols.Recorder, error) { return r, nil }
func (r *recorder) Command(c *protocols.Command, text string) error        { return r.add("command " + text) }
func (r *recorder) Decision(d protocols.Decision) error                    { return r.add("decision " + string(d.Action)) }
func (r *recorder) Columns([]protocols.Column) error                       { return r.add("columns") }
func (r *recorder) Row(v [][]byte) error                                   { return r.add("row " + string(bytes.Join(v, []byte(",")))) }
func (r *recorder) Result(res protocols.Result) error {
	return r.add(fmt.Sprintf("result %d", res.Rows))
}
func (r *recorder) Parameters(string, []protocols.Param) error { return nil }
func (r *recorder) Reply(protocols.Reply) error                { return nil }
func (r *recorder) Exchange(protocols.Exchange) error          { return nil }
func (r *recorder) Close(reason string) error                  { return r.add("close " + reason) }

// TestMinimalEngineGetsTheWholeFlow serves the line protocol and checks
// that it is authenticated, judged, masked and recorded like any engine.
func TestMinimalEngineGetsTheWholeFlow(t *testing.T) {
	e := &lineEngine{upstream: fakeUpstream(t)}
	rec := &recorder{}
	conn := &protocols.Connection{Name: "main", Protocol: "line", Allow: protocols.Principals{"alice"},
		Upstream: e.upstream, Policy: policy{}, Masking: masker{}}
	g, err := session.New(session.Options{Auth: auth{}, Classifier: classifier{}, Recorders: rec,
		Connections: map[string]*protocols.Connection{"main": conn}, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- e.Serve(ctx, ln, engine.Deps{Gateway: g}) }()

	talk := func(lines ...string) []string {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		in := bufio.NewScanner(c)
		var got []string
		for _, l := range lines {
			fmt.Fprintf(c, "%s\n", l)
			for in.Scan() {
				got = append(got, in.Text())
				if w := in.Text(); w == "OK" || strings.HasPrefix(w, "END") || strings.HasPrefix(w, "ERR") {
					break
				}
			}
		}
		return got
	}
	if got := talk("LOGIN alice wrong main"); len(got) != 1 || !strings.HasPrefix(got[0], "ERR authentication failed") {
		t.Fatalf("a wrong token: %q", got)
	}
	got := talk("LOGIN alice alice-token main", "Q SELECT everything", "Q DROP everything")
	want := []string{"OK", "ROW 1,[email]", "ROW 2,none", "END 2", "ERR denied by policy"}
	if !slices.Equal(got, want) {
		t.Fatalf("client saw %q, want %q", got, want)
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	wantRec := []string{"command SELECT everything", "decision allow", "columns", "row 1,[email]", "row 2,none",
		"result 2", "command DROP everything", "decision deny", "close client disconnected"}
	deadline := time.Now().Add(5 * time.Second)
	for {
		rec.mu.Lock()
		got := slices.Clone(rec.events)
		rec.mu.Unlock()
		if slices.Equal(got, wantRec) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("recorded %q, want %q", got, wantRec)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
