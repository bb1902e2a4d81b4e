package main

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
)

// mysqlConnectClients is the connect-heavy workload's concurrency.
const mysqlConnectClients = 4

// mysqlConnectWorkload logs in, runs one query and logs out, over and over:
// sysbench 1.0 has no option to reconnect per event, so the harness's own
// load generator (go-sql-driver/mysql) does it, the same way for every
// target.
func mysqlConnectWorkload() protoWorkload {
	return protoWorkload{Key: fmt.Sprintf("connect-c%d", mysqlConnectClients),
		Desc: fmt.Sprintf("The harness's load generator (go-sql-driver/mysql, %d clients) opens a connection, runs `SELECT 1` and closes it, over and over, for the run's duration; one operation is one whole connection, so the login (Airlock's and the upstream's) dominates.", mysqlConnectClients),
		run: func(ctx context.Context, t *protoTarget, dur time.Duration) (protoRun, error) {
			cfg := gomysql.NewConfig()
			cfg.Net, cfg.Addr, cfg.User, cfg.Passwd, cfg.DBName = "tcp", t.addr(), t.user, t.password, t.db
			cfg.Timeout = 10 * time.Second
			cfg.AllowNativePasswords = true
			conn, err := gomysql.NewConnector(cfg)
			if err != nil {
				return protoRun{}, err
			}
			return closedLoop(ctx, mysqlConnectClients, dur, func(ctx context.Context, _ int) error {
				return connectAndSelect(ctx, conn)
			})
		}}
}

// connectAndSelect logs in through c, runs SELECT 1, reads its row and
// logs out.
func connectAndSelect(ctx context.Context, c driver.Connector) error {
	conn, err := c.Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	q, ok := conn.(driver.QueryerContext)
	if !ok {
		return errors.New("the driver's connection cannot run a query")
	}
	rows, err := q.QueryContext(ctx, "SELECT 1", nil)
	if err != nil {
		return err
	}
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil && !errors.Is(err, io.EOF) {
		rows.Close()
		return err
	}
	if err := rows.Close(); err != nil {
		return err
	}
	got := dest[0]
	if b, ok := got.([]byte); ok {
		got = string(b)
	}
	if fmt.Sprint(got) != "1" {
		return fmt.Errorf("SELECT 1 returned %v", dest[0])
	}
	return nil
}
