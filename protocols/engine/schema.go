package engine

import (
	"context"

	"github.com/airlock-gw/airlock/protocols"
)

// Describer is an Executor that can describe the schema of its
// connections' databases, so that an agent can write correct commands
// without first exploring the catalog itself. It is optional: a frontend
// offers a schema only for engines that implement it.
type Describer interface {
	Executor
	// DescribeSchema describes the database behind a session's
	// connection. It reads it with the commands it sends through query,
	// which the frontend runs through the session flow like the caller's
	// own: each is classified, decided, recorded, and its rows masked.
	// What the upstream's credentials may see is what the caller may
	// query, so nothing is filtered beyond the system's own schemas.
	DescribeSchema(ctx context.Context, query Query) (*Schema, error)
}

// Query runs cmd on the session's upstream through the session flow and
// hands each row of its result, masked, to row (values are valid until
// the next call; nil is NULL). A command the policy refuses, or one the
// upstream fails, returns an error.
type Query func(ctx context.Context, cmd *protocols.Command, row func(values [][]byte) error) error

// Schema is what a connection's database holds, as an agent needs it.
type Schema struct {
	Tables []Table `json:"tables"`
	// Keys are the key patterns of a key-value store (Redis), as the
	// connection's configuration describes them.
	Keys []Key `json:"keys,omitempty"`
}

// Key is a pattern of keys that hold one type of value.
type Key struct {
	// Pattern is a glob as Redis's SCAN MATCH reads it (user:*).
	Pattern string `json:"pattern"`
	// Type is the type of the values (string, hash, list, set, zset,
	// stream, json).
	Type        string `json:"type"`
	Description string `json:"description,omitempty"`
	// Fields name the fields of a hash's or a stream entry's values.
	Fields []string `json:"fields,omitempty"`
}

// ConfigDescriber is an Executor whose connections' configuration
// describes what they hold (a Redis connection's key patterns). A frontend
// serves that description as the schema without running a command: the
// store itself is never scanned.
type ConfigDescriber interface {
	Executor
	// DescribeConfigured describes conn from its configuration; a Schema
	// without tables or keys says the configuration describes nothing.
	DescribeConfigured(conn *protocols.Connection) *Schema
}

// Table is one table, view or other relation of a schema.
type Table struct {
	// Schema is the namespace the table is in (PostgreSQL's schema,
	// MySQL's database); empty where the protocol has none.
	Schema string `json:"schema,omitempty"`
	Name   string `json:"name"`
	// Kind is "table", "view", "materialized view", "foreign table" or
	// "partitioned table".
	Kind    string   `json:"kind"`
	Comment string   `json:"comment,omitempty"`
	Columns []Column `json:"columns"`
}

// Column is one column of a table.
type Column struct {
	Name string `json:"name"`
	// Type is the type as the database writes it (varchar(20), integer[]).
	Type     string `json:"type"`
	Nullable bool   `json:"nullable"`
	Comment  string `json:"comment,omitempty"`
}

// UpstreamError is an error the upstream answered a frontend's command
// with, masked: a frontend shows it to its caller as the database's
// answer. Any other error of a run may name the upstream and is not shown.
type UpstreamError interface {
	error
	// UpstreamCode is the error's code in the protocol (a SQLSTATE).
	UpstreamCode() string
	// UpstreamMessage is the error's message, masked.
	UpstreamMessage() string
}
