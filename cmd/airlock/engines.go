package main

import (
	"github.com/airlock-gw/airlock/protocols/engine"
	"github.com/airlock-gw/airlock/protocols/httpproxy"
	"github.com/airlock-gw/airlock/protocols/mysql"
	"github.com/airlock-gw/airlock/protocols/postgres"
	"github.com/airlock-gw/airlock/protocols/redis"
)

// engines are the protocol engines this binary serves: one line each.
// Each call makes new engines, so every configuration is read by its own.
func engines() []engine.Engine {
	return []engine.Engine{
		postgres.New(),
		mysql.New(),
		redis.New(),
		httpproxy.New(),
	}
}
