package postgres

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/airlock-gw/airlock/protocols"
)

// upstream is an authenticated upstream session, hijacked from pgconn.
type upstream struct {
	conn    net.Conn
	pid     uint32
	secret  []byte
	tls     *tls.Config
	network string // "tcp" or "unix", for the cancel connection
	address string
	params  map[string]string
	// statuses is params as the ParameterStatus messages a client's
	// startup shows, in name order; nil until a session needs them and
	// whenever params change (parameterStatuses).
	statuses []byte
	txStatus byte
	// r and w buffer the upstream stream for every client session that
	// uses it in turn, and for its resets: a kept upstream session does not
	// allocate 48 KiB of buffers again for each client (a client that
	// connects per request would otherwise allocate them at every connect).
	// A session hands the upstream back only with both buffers empty.
	r *frameReader
	w *bufio.Writer
}

// connString quotes a value for a libpq keyword/value connection string.
func connString(kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			continue
		}
		b.WriteString(kv[i])
		b.WriteString("='")
		b.WriteString(strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(kv[i+1]))
		b.WriteString("' ")
	}
	return b.String()
}

// upstreamConfig builds the connection settings for c's upstream with the
// credentials Airlock holds and the given runtime parameters.
func (e *Engine) upstreamConfig(c *protocols.Connection, params map[string]string) (*pgx.ConnConfig, error) {
	u := upstreamOf(c)
	host, port, err := SplitUpstreamAddress(u.Address)
	if err != nil {
		return nil, fmt.Errorf("upstream address: %w", err)
	}
	mode := u.TLS.Mode
	if mode == "" {
		mode = "prefer"
	}
	cs := connString("host", host, "port", port, "sslmode", mode, "sslrootcert", u.TLS.CAFile,
		"connect_timeout", fmt.Sprint(int(e.set.ConnectTimeout.Seconds())))
	cfg, err := pgx.ParseConfig(cs)
	if err != nil {
		return nil, fmt.Errorf("upstream config: %w", err)
	}
	cfg.User = u.User
	cfg.Database = u.Database
	cfg.Password = u.Password.Reveal()
	if u.TLS.ServerName != "" {
		if cfg.TLSConfig != nil {
			cfg.TLSConfig.ServerName = u.TLS.ServerName
		}
		for _, fb := range cfg.Fallbacks {
			if fb.TLSConfig != nil {
				fb.TLSConfig.ServerName = u.TLS.ServerName
			}
		}
	}
	cfg.RuntimeParams = map[string]string{}
	for k, v := range params {
		cfg.RuntimeParams[k] = v
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "airlock"
	}
	return cfg, nil
}

// dialUpstream connects and authenticates to c's upstream with the
// credentials Airlock holds, passing the client's allowed runtime parameters.
// Errors never carry the password: pgconn does not put it in messages, and
// the caller logs them only server-side.
func (e *Engine) dialUpstream(ctx context.Context, c *protocols.Connection, params map[string]string) (*upstream, error) {
	return e.dial(ctx, c, params, true)
}

// dial is dialUpstream; learn says whether a first login reads the
// server's connection slots (a session's login does; a readiness probe,
// which may run before Serve has set the engine up, does not).
func (e *Engine) dial(ctx context.Context, c *protocols.Connection, params map[string]string, learn bool) (*upstream, error) {
	cfg, err := e.upstreamConfig(c, params)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, e.set.ConnectTimeout)
	defer cancel()
	pc, err := pgconn.ConnectConfig(dctx, &cfg.Config)
	if err != nil {
		return nil, err
	}
	if learn {
		e.learnSessionCap(dctx, pc, c)
	}
	h, err := pc.Hijack()
	if err != nil {
		pc.Close(context.Background())
		return nil, fmt.Errorf("hijack upstream: %w", err)
	}
	network, address := pgconn.NetworkAddress(cfg.Host, cfg.Port)
	return &upstream{
		conn: h.Conn, pid: h.PID, secret: h.SecretKey, tls: h.TLSConfig,
		network: network, address: address, params: h.ParameterStatuses, txStatus: h.TxStatus,
		r: newFrameReader(h.Conn, 32<<10, 0), w: bufio.NewWriterSize(h.Conn, 16<<10),
	}, nil
}

// cancel asks the upstream to cancel what its session is running, the way
// libpq does: a new connection (TLS when the session used TLS) carrying only
// a CancelRequest.
func (u *upstream) cancel(timeout time.Duration) error {
	d := net.Dialer{Timeout: timeout}
	c, err := d.Dial(u.network, u.address)
	if err != nil {
		return fmt.Errorf("dial for cancel: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if u.tls != nil {
		req := []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}
		if _, err := c.Write(req); err != nil {
			return err
		}
		var b [1]byte
		if _, err := c.Read(b[:]); err != nil {
			return err
		}
		if b[0] == 'S' {
			tc := tls.Client(c, u.tls)
			if err := tc.Handshake(); err != nil {
				return fmt.Errorf("tls for cancel: %w", err)
			}
			c = tc
		}
	}
	msg, err := (&pgproto3.CancelRequest{ProcessID: u.pid, SecretKey: u.secret}).Encode(nil)
	if err != nil {
		return err
	}
	if _, err := c.Write(msg); err != nil {
		return err
	}
	// The server closes the connection when done; wait briefly for it so
	// the cancel is delivered before the caller moves on.
	var b [1]byte
	_, _ = c.Read(b[:])
	return nil
}

// parameterStatuses returns up.params as ParameterStatus messages in name
// order, encoded once for every client the upstream session serves until
// a reset changes a parameter: sorting and encoding them again at every
// connect cost a client that connects per transaction a few microseconds.
func (up *upstream) parameterStatuses() []byte {
	if up.statuses != nil {
		return up.statuses
	}
	keys := make([]string, 0, len(up.params))
	for k := range up.params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := []byte{}
	for _, k := range keys {
		out, _ = (&pgproto3.ParameterStatus{Name: k, Value: up.params[k]}).Encode(out)
	}
	up.statuses = out
	return out
}
