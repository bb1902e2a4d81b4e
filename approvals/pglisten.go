package approvals

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// listenAppName lets operators (and tests) find the LISTEN connection in
// pg_stat_activity.
const listenAppName = "airlock-approvals-listen"

// listen keeps one dedicated connection LISTENing on notifyChannel until ctx
// ends, calling fn for each notification. After every (re)connection it
// calls fn("") because notifications sent while it was away are lost.
func (s *SQLStore) listen(ctx context.Context, fn func(string)) {
	const minBackoff, maxBackoff = 100 * time.Millisecond, 10 * time.Second
	backoff := minBackoff
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, fn, func() { backoff = minBackoff })
		if ctx.Err() != nil {
			return
		}
		// pgx errors name host, user and database, never the password.
		s.log.Warn("approvals listener lost its connection; reconnecting", "err", err, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

func (s *SQLStore) listenOnce(ctx context.Context, fn func(string), connected func()) error {
	cfg, err := pgx.ParseConfig(s.dsn.Reveal())
	if err != nil {
		return errBadDSN
	}
	cfg.RuntimeParams["application_name"] = listenAppName
	dialCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.ConnectConfig(dialCtx, cfg)
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	connected()
	fn("")
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		fn(n.Payload)
	}
}
