package postgres

import (
	"context"
	"fmt"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
)

var _ engine.Describer = (*Engine)(nil)

// schemaQuery lists every column of the database's tables, views,
// materialized views, foreign and partitioned tables outside the system
// schemas, with their comments, in one catalog query. Partitions are left
// out: their parent describes them.
const schemaQuery = `SELECT n.nspname AS schema_name, c.relname AS table_name, c.relkind::text AS table_kind,
  obj_description(c.oid, 'pg_class') AS table_comment, a.attname AS column_name,
  format_type(a.atttypid, a.atttypmod) AS column_type, NOT a.attnotnull AS nullable,
  col_description(c.oid, a.attnum) AS column_comment
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
ORDER BY n.nspname, c.relname, a.attnum`

var relationKinds = map[string]string{
	"r": "table", "v": "view", "m": "materialized view", "f": "foreign table", "p": "partitioned table",
}

// DescribeSchema implements engine.Describer with one catalog query.
func (e *Engine) DescribeSchema(ctx context.Context, query engine.Query) (*engine.Schema, error) {
	s := &engine.Schema{Tables: []engine.Table{}}
	cmd := &protocols.Command{Protocol: protocols.Postgres, Kind: "query", Text: schemaQuery}
	err := query(ctx, cmd, func(v [][]byte) error {
		if len(v) != 8 {
			return fmt.Errorf("catalog query: %d columns, want 8", len(v))
		}
		schema, name := string(v[0]), string(v[1])
		n := len(s.Tables)
		if n == 0 || s.Tables[n-1].Schema != schema || s.Tables[n-1].Name != name {
			kind := relationKinds[string(v[2])]
			s.Tables = append(s.Tables, engine.Table{Schema: schema, Name: name, Kind: kind, Comment: string(v[3]), Columns: []engine.Column{}})
			n++
		}
		t := &s.Tables[n-1]
		t.Columns = append(t.Columns, engine.Column{Name: string(v[4]), Type: string(v[5]), Nullable: string(v[6]) == "t", Comment: string(v[7])})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}
