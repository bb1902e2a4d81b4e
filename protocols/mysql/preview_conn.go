package mysql

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/mysql/wire"
)

// previewCaps are the flags of a preview's session. CLIENT_MULTI_STATEMENTS
// is left out, so that the server refuses any text holding more than one
// statement; CLIENT_LOCAL_FILES too, so that it asks for no file.
const previewCaps = mysql.CLIENT_LONG_FLAG | mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_TRANSACTIONS | mysql.CLIENT_DEPRECATE_EOF

// maxPreviewRows bounds the rows a preview keeps of one answer.
const maxPreviewRows = 1000

var errPreviewBroken = errors.New("the preview's connection is unusable after an earlier error")

// previewConn is a session of the upstream's own for one preview, logged
// in with the credentials Airlock holds for the connection, its timeouts
// bounded by the preview's deadline, inside a read-only transaction. Only
// the goroutine making the preview uses it.
type previewConn struct {
	up      *wire.Upstream
	limit   int
	mariadb bool
	// database is the session's database: the connection's, which
	// unqualified names resolve against.
	database string
	broken   bool
}

// dialPreview opens the session of one preview; begin prepares it.
func (e *Engine) dialPreview(ctx context.Context, c *protocols.Connection) (*previewConn, error) {
	attrs := map[string]string{"_client_name": "airlock", "program_name": "airlock preview"}
	up, err := wire.Dial(ctx, dialConfig(c, previewCaps, 0, attrs))
	if err != nil {
		return nil, err
	}
	return &previewConn{up: up, limit: int(e.set.MaxPacketSize), mariadb: strings.Contains(up.ServerVersion, "MariaDB"),
		database: upstreamOf(c).Database}, nil
}

// begin sets the session's limits and opens the read-only transaction
// every preview query runs in. The limits end a little before ctx does, so
// that the server gives up a lock wait and answers, rather than keep
// waiting after the connection is gone: MariaDB's max_statement_time (or
// MySQL's max_execution_time, which bounds SELECTs only) and both lock
// waits, which count whole seconds. The session's sql_mode is the empty
// one, in which the derived queries read as they were written;
// information_schema's statistics are read fresh on MySQL 8, which
// otherwise caches them for a day.
func (pc *previewConn) begin(ctx context.Context) error {
	left := 3 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		left = time.Until(dl) * 4 / 5
	}
	lockSecs := max(int64(left/time.Second), 1)
	var set string
	if pc.mariadb {
		set = fmt.Sprintf("SET SESSION sql_mode = '', max_statement_time = %.3f, lock_wait_timeout = %d, innodb_lock_wait_timeout = %d",
			max(left.Seconds(), 0.001), lockSecs, lockSecs)
	} else {
		set = fmt.Sprintf("SET SESSION sql_mode = '', max_execution_time = %d, lock_wait_timeout = %d, innodb_lock_wait_timeout = %d",
			max(left.Milliseconds(), 1), lockSecs, lockSecs)
		if v := pc.up.ServerVersion; v != "" && v[0] >= '8' && v[0] <= '9' {
			set += ", information_schema_stats_expiry = 0"
		}
	}
	if _, err := pc.query(ctx, set); err != nil {
		return err
	}
	_, err := pc.query(ctx, "START TRANSACTION READ ONLY")
	return err
}

// close rolls the transaction back and ends the session.
func (pc *previewConn) close() {
	if !pc.broken {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, _ = pc.query(ctx, "ROLLBACK")
		cancel()
	}
	quit(pc.up.Conn)
}

// query runs one statement and returns its rows (at most maxPreviewRows),
// values as text, nil for NULL. A server error leaves the session usable
// (an error inside a transaction ends the statement, not the
// transaction); any other error, the end of ctx included, does not.
func (pc *previewConn) query(ctx context.Context, q string) ([][][]byte, error) {
	if pc.broken {
		return nil, errPreviewBroken
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = pc.up.Conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = pc.up.Conn.SetDeadline(time.Unix(1, 0)) })
	rows, err := pc.roundTrip(q)
	stop()
	var me *mysql.MyError
	if err != nil && !errors.As(err, &me) {
		pc.broken = true
		if cerr := ctx.Err(); cerr != nil {
			err = fmt.Errorf("%w: %w", cerr, err)
		}
	}
	return rows, err
}

func (pc *previewConn) roundTrip(q string) ([][][]byte, error) {
	if _, err := wire.WritePacket(pc.up.Conn, 0, wire.AppendQuery(nil, pc.up.Capabilities, []byte(q))); err != nil {
		return nil, err
	}
	p, err := pc.read()
	if err != nil {
		return nil, err
	}
	switch wire.ClassifyResponse(p) {
	case wire.ResponseOK:
		return nil, nil
	case wire.ResponseERR:
		e, err := wire.ParseERR(p)
		if err != nil {
			return nil, err
		}
		return nil, e
	case wire.ResponseLocalFile:
		return nil, errors.New("the server asked for a file")
	}
	n, err := wire.ParseColumnCount(p)
	if err != nil {
		return nil, err
	}
	for range n {
		if _, err := pc.read(); err != nil {
			return nil, err
		}
	}
	if pc.up.Capabilities&mysql.CLIENT_DEPRECATE_EOF == 0 {
		if _, err := pc.read(); err != nil {
			return nil, err
		}
	}
	var rows [][][]byte
	var values [][]byte
	for {
		p, err := pc.read()
		if err != nil {
			return nil, err
		}
		if end, _, err := wire.ResultEnd(p, pc.up.Capabilities); end {
			return rows, err
		}
		if values, err = wire.DecodeTextRow(p, n, values); err != nil {
			return nil, err
		}
		if len(rows) < maxPreviewRows {
			row := make([][]byte, len(values))
			for i, v := range values {
				if v != nil {
					row[i] = append([]byte{}, v...)
				}
			}
			rows = append(rows, row)
		}
	}
}

func (pc *previewConn) read() ([]byte, error) {
	p, err := wire.ReadPacket(pc.up.Conn, pc.limit)
	if err != nil {
		return nil, err
	}
	return p.Payload, nil
}

// Server errors that mean the preview ran out of time: a lock wait
// timeout, MariaDB's max_statement_time, MySQL's max_execution_time, an
// interrupted query, NOWAIT.
var timeoutCodes = map[uint16]bool{1205: true, 1969: true, 3024: true, 1317: true, 3572: true}

// timedOut reports whether err is the preview running out of time: the
// context's deadline, a socket deadline, or the server's own limits.
func timedOut(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var me *mysql.MyError
	return errors.As(err, &me) && timeoutCodes[me.Code]
}

// previewErrText is an error as a preview says it: a server error's
// message and number, never the address and user a dial error carries.
func previewErrText(err error) string {
	var me *mysql.MyError
	if errors.As(err, &me) {
		return fmt.Sprintf("%s (error %d)", me.Message, me.Code)
	}
	return err.Error()
}

// quoteString is s as a string literal in a session whose sql_mode has no
// NO_BACKSLASH_ESCAPES (the preview's own).
func quoteString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `''`, "\x00", `\0`, "\x1a", `\Z`)
	return "'" + r.Replace(s) + "'"
}

// likePattern is a LIKE pattern matching s anywhere, its wildcards escaped.
func likePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(s) + "%"
}

// identName quotes an identifier for people only where MySQL would need
// it.
func identName(s string) string {
	plain, digits := s != "", true
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
		case r == '_' || r == '$' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
			digits = false
		default:
			plain = false
		}
	}
	if plain && !digits {
		return s
	}
	return "`" + strings.ReplaceAll(s, "`", "``") + "`"
}
