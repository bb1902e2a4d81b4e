package redis

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/redis/resp"
	"github.com/airlock-gw/airlock/protocols/transport"
)

// upstreamBuffer is the read buffer of an upstream socket: most replies fit
// and are relayed as views into it.
const upstreamBuffer = 32 << 10

// upstream is an authenticated upstream connection, in the protocol
// version and database the session asked for.
type upstream struct {
	conn  net.Conn
	r     *transport.Reader
	w     *bufio.Writer
	dec   *resp.ReplyDecoder
	hello helloInfo
}

// helloInfo is what the upstream said of itself in its HELLO reply; Airlock
// answers its clients' HELLO with it.
type helloInfo struct {
	version, mode, role string
	id                  int64
}

// respReader gives a transport.Reader the size the resp decoders ask of
// their input.
type respReader struct {
	*transport.Reader
	size int
}

func (r respReader) Size() int { return r.size }

// splitHostPort checks host:port.
func splitHostPort(addr string) (string, string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", fmt.Errorf("%q is not host:port", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("%q: port must be 1 to 65535", addr)
	}
	return host, port, nil
}

// dialOptions say how a session wants its upstream.
type dialOptions struct {
	proto resp.Proto
	// name is the client name the caller gave with HELLO … SETNAME.
	name string
	// chunk is the reply decoder's chunk size: the longest value
	// delivered whole (masking needs values whole).
	chunk int
}

// dial connects to c's upstream, authenticates with the credentials
// Airlock holds, switches to the caller's protocol version and selects the
// connection's database. Errors never carry the password.
func (e *Engine) dial(ctx context.Context, c *protocols.Connection, o dialOptions) (*upstream, error) {
	u := upstreamOf(c)
	ctx, cancel := context.WithTimeout(ctx, e.set.ConnectTimeout)
	defer cancel()
	conn, err := e.connect(ctx, c.Name, u)
	if err != nil {
		return nil, err
	}
	up := &upstream{conn: conn, w: bufio.NewWriterSize(conn, 16<<10)}
	up.r = transport.NewReaderSize(conn, upstreamBuffer, 0)
	up.dec = resp.NewReplyDecoder(respReader{up.r, upstreamBuffer}, resp.ReplyOptions{ChunkSize: o.chunk})
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	err = up.handshake(u, o)
	stop()
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return up, nil
}

// connect opens the socket, with TLS as tls.mode says.
func (e *Engine) connect(ctx context.Context, name string, u *Upstream) (net.Conn, error) {
	d := net.Dialer{}
	network := "tcp"
	if isUnix(u.Address) {
		network = "unix"
	}
	mode := u.TLS.Mode
	if mode == "prefer" && e.preferPlain(name) {
		mode = "disable"
	}
	conn, err := d.DialContext(ctx, network, u.Address)
	if err != nil || mode == "disable" || network == "unix" {
		return conn, err
	}
	cfg, err := tlsConfig(u)
	if err != nil {
		conn.Close()
		return nil, err
	}
	tc := tls.Client(conn, cfg)
	hctx := ctx
	if mode == "prefer" {
		// A server without TLS may wait for a line that never comes.
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
	}
	if err := tc.HandshakeContext(hctx); err != nil {
		conn.Close()
		if mode != "prefer" {
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		e.mu.Lock()
		e.plainUntil[name] = time.Now().Add(time.Minute)
		e.mu.Unlock()
		return d.DialContext(ctx, network, u.Address)
	}
	return tc, nil
}

// preferPlain reports whether tls.mode prefer should skip TLS for now.
func (e *Engine) preferPlain(name string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return time.Now().Before(e.plainUntil[name])
}

func tlsConfig(u *Upstream) (*tls.Config, error) {
	host := u.TLS.ServerName
	if host == "" {
		host, _, _ = net.SplitHostPort(u.Address)
	}
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if u.TLS.Mode != "verify-full" {
		// require and prefer encrypt without checking who answers, as
		// libpq's sslmode=require does.
		cfg.InsecureSkipVerify = true
		return cfg, nil
	}
	if u.TLS.CAFile != "" {
		pem, err := os.ReadFile(u.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("tls.ca_file: no certificate found")
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// handshake sends HELLO (with AUTH when Airlock holds a password) and
// SELECT in one write, and reads their replies.
func (up *upstream) handshake(u *Upstream, o dialOptions) error {
	args := []string{"HELLO", strconv.Itoa(int(o.proto))}
	if pw := u.Password.Reveal(); pw != "" {
		user := u.User
		if user == "" {
			user = "default"
		}
		args = append(args, "AUTH", user, pw)
	}
	if o.name != "" {
		args = append(args, "SETNAME", o.name)
	}
	out := resp.AppendCommand(nil, args...)
	if u.Database != 0 {
		out = resp.AppendCommand(out, "SELECT", strconv.Itoa(u.Database))
	}
	if _, err := up.w.Write(out); err != nil {
		return err
	}
	if err := up.w.Flush(); err != nil {
		return err
	}
	hello, err := readValue(up.dec, 1<<20)
	if err != nil {
		return fmt.Errorf("read HELLO reply: %w", err)
	}
	if msg, ok := hello.errorText(); ok {
		if strings.HasPrefix(msg, "ERR unknown command") {
			return errors.New("the upstream does not know HELLO: Redis 6 or later is required")
		}
		return &refusedError{command: "HELLO", msg: msg}
	}
	up.hello = parseHello(hello)
	if u.Database != 0 {
		sel, err := readValue(up.dec, 1<<16)
		if err != nil {
			return fmt.Errorf("read SELECT reply: %w", err)
		}
		if msg, ok := sel.errorText(); ok {
			return &refusedError{command: fmt.Sprintf("SELECT %d", u.Database), msg: msg}
		}
	}
	return nil
}

func parseHello(v *value) helloInfo {
	h := helloInfo{version: "7.0.0", mode: "standalone", role: "master"}
	for i := 0; i+1 < len(v.elems); i += 2 {
		k, val := string(v.elems[i].str), v.elems[i+1]
		switch k {
		case "version":
			h.version = string(val.str)
		case "mode":
			h.mode = string(val.str)
		case "role":
			h.role = string(val.str)
		case "id":
			h.id, _ = strconv.ParseInt(string(val.str), 10, 64)
		}
	}
	return h
}

// appendHello appends Airlock's answer to a client's HELLO: the upstream's
// own description, in the client's protocol version, as Redis writes it.
func appendHello(dst []byte, h helloInfo, p resp.Proto) []byte {
	dst = resp.AppendMapHeader(dst, 7, p)
	dst = resp.AppendBulkString(dst, "server")
	dst = resp.AppendBulkString(dst, "redis")
	dst = resp.AppendBulkString(dst, "version")
	dst = resp.AppendBulkString(dst, h.version)
	dst = resp.AppendBulkString(dst, "proto")
	dst = resp.AppendInt(dst, int64(p))
	dst = resp.AppendBulkString(dst, "id")
	dst = resp.AppendInt(dst, h.id)
	dst = resp.AppendBulkString(dst, "mode")
	dst = resp.AppendBulkString(dst, h.mode)
	dst = resp.AppendBulkString(dst, "role")
	dst = resp.AppendBulkString(dst, h.role)
	dst = resp.AppendBulkString(dst, "modules")
	return resp.AppendArrayHeader(dst, 0)
}

// value is a whole reply, for the few replies Airlock reads whole: its own
// handshake's, and the agent frontends' (Executor).
type value struct {
	kind  resp.Kind
	str   []byte // a scalar's payload
	null  bool
	elems []*value
}

func (v *value) errorText() (string, bool) {
	if v.kind == resp.SimpleError || v.kind == resp.BulkError {
		return string(v.str), true
	}
	return "", false
}

var errReplyTooLarge = errors.New("reply too large")

// readValue reads one top-level reply whole, attributes skipped, holding at
// most limit payload bytes.
func readValue(dec *resp.ReplyDecoder, limit int) (*value, error) {
	var stack []*value
	var root *value
	size := 0
	for {
		t, err := dec.Next()
		if err != nil {
			return nil, err
		}
		if t.Attr {
			continue
		}
		if t.Part == resp.PartChunk || t.Part == resp.PartEnd {
			if t.Part == resp.PartChunk {
				cur := stack[len(stack)-1]
				if size += len(t.Payload); size > limit {
					return nil, errReplyTooLarge
				}
				cur.str = append(cur.str, t.Payload...)
			}
			if t.Part == resp.PartEnd {
				stack = stack[:len(stack)-1]
			}
			if t.Complete {
				return root, nil
			}
			continue
		}
		for len(stack) > t.Depth {
			stack = stack[:len(stack)-1]
		}
		if size += len(t.Payload) + 16; size > limit {
			return nil, errReplyTooLarge
		}
		v := &value{kind: t.Kind, null: t.IsNull(), str: append([]byte(nil), t.Payload...)}
		if len(stack) > 0 {
			parent := stack[len(stack)-1]
			parent.elems = append(parent.elems, v)
		} else {
			root = v
		}
		if (t.Kind.Aggregate() && t.Len > 0) || t.Part == resp.PartBegin {
			stack = append(stack, v)
		}
		if t.Complete {
			return root, nil
		}
	}
}
