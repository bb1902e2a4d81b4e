package mysql

import (
	"context"
	"fmt"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
)

var _ engine.Describer = (*Engine)(nil)

// schemaQuery lists every column of the session's database's tables and
// views (the connection's database), with their comments, in one
// information_schema query. System-versioned tables (MariaDB) are tables;
// sequences and temporary tables are left out.
const schemaQuery = `SELECT t.TABLE_SCHEMA, t.TABLE_NAME, t.TABLE_TYPE, t.TABLE_COMMENT,
  c.COLUMN_NAME, c.COLUMN_TYPE, c.IS_NULLABLE, c.COLUMN_COMMENT
FROM information_schema.TABLES t
JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME
WHERE t.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED', 'VIEW')
ORDER BY t.TABLE_NAME, c.ORDINAL_POSITION`

// DescribeSchema implements engine.Describer with one information_schema
// query.
func (e *Engine) DescribeSchema(ctx context.Context, query engine.Query) (*engine.Schema, error) {
	s := &engine.Schema{Tables: []engine.Table{}}
	cmd := &protocols.Command{Protocol: protocols.MySQL, Kind: "query", Text: schemaQuery}
	err := query(ctx, cmd, func(v [][]byte) error {
		if len(v) != 8 {
			return fmt.Errorf("information_schema query: %d columns, want 8", len(v))
		}
		schema, name := string(v[0]), string(v[1])
		n := len(s.Tables)
		if n == 0 || s.Tables[n-1].Schema != schema || s.Tables[n-1].Name != name {
			kind, comment := "table", string(v[3])
			if string(v[2]) == "VIEW" {
				// MySQL writes "VIEW" as every view's comment.
				kind = "view"
				if comment == "VIEW" {
					comment = ""
				}
			}
			s.Tables = append(s.Tables, engine.Table{Schema: schema, Name: name, Kind: kind, Comment: comment, Columns: []engine.Column{}})
			n++
		}
		t := &s.Tables[n-1]
		t.Columns = append(t.Columns, engine.Column{Name: string(v[4]), Type: string(v[5]), Nullable: string(v[6]) == "YES", Comment: string(v[7])})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}
