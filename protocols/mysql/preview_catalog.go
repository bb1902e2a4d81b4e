package mysql

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/airlock-gw/airlock/protocols"
	myrisk "github.com/airlock-gw/airlock/sqlrisk/mysql"
)

// maxDependents bounds the dependents a preview lists for one object.
const maxDependents = 50

// tableTypes name information_schema.TABLES' TABLE_TYPE as a preview does.
var tableTypes = map[string]string{"BASE TABLE": "table", "VIEW": "view", "SYSTEM VIEW": "system view",
	"SEQUENCE": "sequence", "SYSTEM VERSIONED": "system-versioned table", "TEMPORARY": "temporary table"}

// describeObjects describes the tables (or the database) a DDL statement
// names.
func describeObjects(ctx context.Context, pc *previewConn, t *myrisk.PreviewTarget) ([]protocols.PreviewEffect, error) {
	var out []protocols.PreviewEffect
	var last error
	for _, obj := range t.Tables {
		e := protocols.PreviewEffect{Statement: t.Statement, Kind: t.Kind, ObjectType: t.ObjectType,
			Object: pc.objectName(obj.Schema, obj.Name)}
		var err error
		if t.ObjectType == "database" {
			e.Object = identName(obj.Name)
			err = pc.describeDatabase(ctx, &e, obj.Name)
		} else {
			err = pc.describeTable(ctx, &e, pc.schemaOf(obj.Schema), obj.Name)
		}
		if err != nil {
			e.Note, last = "not described: "+previewErrText(err), err
		}
		e.Note = joinNote(e.Note, t.Caution)
		out = append(out, e)
		if err != nil && timedOut(ctx, err) {
			return out, err
		}
	}
	return out, last
}

// describeTable gives a table's type, size with its indexes
// (DATA_LENGTH + INDEX_LENGTH), the catalog's row estimate (TABLE_ROWS,
// exact for MyISAM, sampled for InnoDB) and its dependents. A name that
// matches several tables case-insensitively prefers the exact spelling.
func (pc *previewConn) describeTable(ctx context.Context, e *protocols.PreviewEffect, schema, name string) error {
	s, n := quoteString(schema), quoteString(name)
	rows, err := pc.query(ctx, `SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, DATA_LENGTH + INDEX_LENGTH, TABLE_ROWS
FROM information_schema.TABLES WHERE TABLE_SCHEMA = `+s+` AND TABLE_NAME = `+n+`
ORDER BY TABLE_SCHEMA = BINARY `+s+` AND TABLE_NAME = BINARY `+n+` DESC LIMIT 1`)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		e.Note = "no such table"
		if schema == "" {
			e.Note = "no such table (and the connection names no database)"
		}
		return nil
	}
	r := rows[0]
	schema, name = string(r[0]), string(r[1])
	e.Object = identName(schema) + "." + identName(name)
	if k, ok := tableTypes[string(r[2])]; ok {
		e.ObjectType = k
	}
	if v, err := strconv.ParseInt(string(r[3]), 10, 64); err == nil && r[3] != nil {
		e.Bytes = &v
	}
	if v, err := strconv.ParseInt(string(r[4]), 10, 64); err == nil && r[4] != nil {
		e.EstimatedRows = &v
	}
	s, n = quoteString(schema), quoteString(name)
	views := quoteString(likePattern("`" + strings.ReplaceAll(schema, "`", "``") + "`.`" + strings.ReplaceAll(name, "`", "``") + "`"))
	deps, err := pc.query(ctx, `SELECT 'foreign key', CONSTRAINT_SCHEMA, TABLE_NAME, CONSTRAINT_NAME
FROM information_schema.REFERENTIAL_CONSTRAINTS
WHERE UNIQUE_CONSTRAINT_SCHEMA = `+s+` AND REFERENCED_TABLE_NAME = `+n+` AND NOT (CONSTRAINT_SCHEMA = `+s+` AND TABLE_NAME = `+n+`)
UNION ALL SELECT 'view', TABLE_SCHEMA, TABLE_NAME, NULL FROM information_schema.VIEWS
WHERE VIEW_DEFINITION LIKE `+views+` AND NOT (TABLE_SCHEMA = `+s+` AND TABLE_NAME = `+n+`)
UNION ALL SELECT 'trigger', TRIGGER_SCHEMA, TRIGGER_NAME, NULL FROM information_schema.TRIGGERS
WHERE EVENT_OBJECT_SCHEMA = `+s+` AND EVENT_OBJECT_TABLE = `+n+`
LIMIT `+strconv.Itoa(maxDependents+1))
	if err != nil {
		return err
	}
	e.Dependents = dependents(deps)
	return nil
}

// describeDatabase gives a database's size and rows (the sums over its
// tables), what it holds, and the objects of other databases that depend
// on it: foreign keys into it, views that name its tables.
func (pc *previewConn) describeDatabase(ctx context.Context, e *protocols.PreviewEffect, name string) error {
	d := quoteString(name)
	rows, err := pc.query(ctx, `SELECT s.SCHEMA_NAME, COUNT(t.TABLE_NAME), COALESCE(SUM(t.TABLE_TYPE = 'VIEW'), 0),
	COALESCE(SUM(t.DATA_LENGTH + t.INDEX_LENGTH), 0), COALESCE(SUM(t.TABLE_ROWS), 0)
FROM information_schema.SCHEMATA s LEFT JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = s.SCHEMA_NAME
WHERE s.SCHEMA_NAME = `+d+` GROUP BY s.SCHEMA_NAME
ORDER BY s.SCHEMA_NAME = BINARY `+d+` DESC LIMIT 1`)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		e.Note = "no such database"
		return nil
	}
	r := rows[0]
	name = string(r[0])
	e.Object = identName(name)
	tables, _ := strconv.ParseInt(string(r[1]), 10, 64)
	views, _ := strconv.ParseInt(string(r[2]), 10, 64)
	if v, err := strconv.ParseInt(string(r[3]), 10, 64); err == nil {
		e.Bytes = &v
	}
	if v, err := strconv.ParseInt(string(r[4]), 10, 64); err == nil {
		e.EstimatedRows = &v
	}
	e.Note = fmt.Sprintf("holds %d tables and %d views", tables-views, views)
	d = quoteString(name)
	like := quoteString(likePattern("`" + strings.ReplaceAll(name, "`", "``") + "`."))
	deps, err := pc.query(ctx, `SELECT 'foreign key', CONSTRAINT_SCHEMA, TABLE_NAME, CONSTRAINT_NAME
FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE UNIQUE_CONSTRAINT_SCHEMA = `+d+` AND CONSTRAINT_SCHEMA <> `+d+`
UNION ALL SELECT 'view', TABLE_SCHEMA, TABLE_NAME, NULL FROM information_schema.VIEWS
WHERE VIEW_DEFINITION LIKE `+like+` AND TABLE_SCHEMA <> `+d+`
LIMIT `+strconv.Itoa(maxDependents+1))
	if err != nil {
		return err
	}
	e.Dependents = dependents(deps)
	return nil
}

// dependents names the rows of a dependents query: kind, schema, name and
// the constraint's name for a foreign key.
func dependents(rows [][][]byte) []string {
	var out []string
	for i, r := range rows {
		if i == maxDependents {
			out = append(out, "and more")
			break
		}
		name := identName(string(r[1])) + "." + identName(string(r[2]))
		if r[3] != nil {
			out = append(out, fmt.Sprintf("%s %s of %s", r[0], identName(string(r[3])), name))
		} else {
			out = append(out, fmt.Sprintf("%s %s", r[0], name))
		}
	}
	return out
}

// resolveColumns finds the tables of a multi-table UPDATE's FROM clause
// that hold the columns it sets without naming their table, as the server
// would: a column belongs to the one source table that has it.
func (pc *previewConn) resolveColumns(ctx context.Context, t *myrisk.PreviewTarget) ([]myrisk.Table, string, error) {
	var pairs, cols []string
	for _, s := range t.Sources {
		pairs = append(pairs, "("+quoteString(pc.schemaOf(s.Schema))+", "+quoteString(s.Name)+")")
	}
	for _, c := range t.Unresolved {
		cols = append(cols, quoteString(c))
	}
	rows, err := pc.query(ctx, `SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS
WHERE (TABLE_SCHEMA, TABLE_NAME) IN (`+strings.Join(pairs, ", ")+`) AND COLUMN_NAME IN (`+strings.Join(cols, ", ")+`)`)
	if err != nil {
		return nil, "", err
	}
	var out []myrisk.Table
	var unknown []string
	for _, c := range t.Unresolved {
		var owners []myrisk.Table
		for _, s := range t.Sources {
			for _, r := range rows {
				if strings.EqualFold(string(r[0]), pc.schemaOf(s.Schema)) && strings.EqualFold(string(r[1]), s.Name) &&
					strings.EqualFold(string(r[2]), c) {
					owners = append(owners, s)
					break
				}
			}
		}
		if len(owners) != 1 {
			unknown = append(unknown, c)
			continue
		}
		if !containsTable(out, owners[0]) {
			out = append(out, owners[0])
		}
	}
	note := ""
	if len(unknown) > 0 {
		note = "the table of column " + strings.Join(unknown, ", ") + " is not known"
	}
	return out, note, nil
}

// key is the columns that tell target's rows apart: its primary key, or a
// unique index on whole NOT NULL columns, or else all its columns (which
// the count compares with <=>, so that duplicate rows count as the server
// would change them: all of them).
func (pc *previewConn) key(ctx context.Context, target myrisk.Table) ([]string, error) {
	s, n := quoteString(pc.schemaOf(target.Schema)), quoteString(target.Name)
	rows, err := pc.query(ctx, `SELECT INDEX_NAME, COLUMN_NAME, NULLABLE, SUB_PART FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = `+s+` AND TABLE_NAME = `+n+` AND NON_UNIQUE = 0
ORDER BY INDEX_NAME <> 'PRIMARY', INDEX_NAME, SEQ_IN_INDEX`)
	if err != nil {
		return nil, err
	}
	var cols []string
	usable := true
	for i, r := range rows {
		cols = append(cols, string(r[1]))
		usable = usable && r[1] != nil && string(r[2]) != "YES" && r[3] == nil
		if i+1 == len(rows) || string(rows[i+1][0]) != string(r[0]) {
			if usable {
				return cols, nil
			}
			cols, usable = cols[:0], true
		}
	}
	rows, err = pc.query(ctx, `SELECT COLUMN_NAME FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = `+s+` AND TABLE_NAME = `+n+` ORDER BY ORDINAL_POSITION`)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("no table %s", pc.objectName(target.Schema, target.Name))
	}
	for _, r := range rows {
		cols = append(cols, string(r[0]))
	}
	return cols, nil
}
