package main

import (
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pgxConfig wraps a pgconn configuration for pgx. It uses the simple
// protocol so that verification queries look like psql's to a gateway.
func pgxConfig(cfg *pgconn.Config) *pgx.ConnConfig {
	cc, _ := pgx.ParseConfig("")
	cc.Config = *cfg
	cc.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	return cc
}
