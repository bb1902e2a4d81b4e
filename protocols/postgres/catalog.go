package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-gw/airlock/protocols"
)

// catalog answers the questions masking asks of the database schema:
// which table a result column comes from (for table.column rules), what a
// type created in the database is (citext, domains, enums), and which
// columns a COPY ... TO STDOUT sends. It keeps one side connection per
// Airlock connection, with the held credentials, so lookups never disturb
// a client's session; answers are cached for the process's life (an OID
// names the same object until it is dropped).
type catalog struct {
	e *Engine
	c *protocols.Connection

	mu   sync.Mutex // serialises use of conn
	conn *pgx.Conn

	cacheMu sync.RWMutex
	tables  map[uint32]string
	types   map[uint32]protocols.ValueType
}

// firstNormalOID is where OIDs of objects created in a database start; lower
// ones are built in.
const firstNormalOID = 16384

// catalogFor returns the shared catalog of connection c.
func (e *Engine) catalogFor(c *protocols.Connection) *catalog {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.catalogs == nil {
		e.catalogs = map[string]*catalog{}
	}
	k := e.catalogs[c.Name]
	if k == nil || k.c != c {
		k = &catalog{e: e, c: c, tables: map[uint32]string{}, types: map[uint32]protocols.ValueType{}}
		e.catalogs[c.Name] = k
	}
	return k
}

// use runs fn on the side connection, dialling it when needed.
func (k *catalog) use(ctx context.Context, fn func(*pgx.Conn) error) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.conn == nil || k.conn.IsClosed() {
		cfg, err := k.e.upstreamConfig(k.c, map[string]string{"application_name": "airlock catalog"})
		if err != nil {
			return err
		}
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return fmt.Errorf("catalog connection: %w", err)
		}
		k.conn = conn
	}
	err := fn(k.conn)
	if err != nil && (errors.Is(err, context.DeadlineExceeded) || k.conn.PgConn().IsBusy()) {
		k.conn.Close(context.Background())
		k.conn = nil
	}
	return err
}

func (k *catalog) close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.conn != nil {
		k.conn.Close(context.Background())
		k.conn = nil
	}
}

const catalogTimeout = 5 * time.Second

// resolve fills the cache for the table and type OIDs not yet known.
func (k *catalog) resolve(tables, types []uint32) error {
	k.cacheMu.RLock()
	var needT, needY []uint32
	for _, o := range tables {
		if _, ok := k.tables[o]; !ok && o != 0 {
			needT = append(needT, o)
		}
	}
	for _, o := range types {
		if _, ok := k.types[o]; !ok && o >= firstNormalOID {
			needY = append(needY, o)
		}
	}
	k.cacheMu.RUnlock()
	if len(needT) == 0 && len(needY) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), catalogTimeout)
	defer cancel()
	return k.use(ctx, func(conn *pgx.Conn) error {
		names := map[uint32]string{}
		kinds := map[uint32]protocols.ValueType{}
		if len(needT) > 0 {
			rows, err := conn.Query(ctx, `SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c
				JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = ANY($1::oid[])`, needT)
			if err != nil {
				return err
			}
			for rows.Next() {
				var oid uint32
				var nsp, rel string
				if err := rows.Scan(&oid, &nsp, &rel); err != nil {
					return err
				}
				names[oid] = nsp + "." + rel
			}
			if err := rows.Err(); err != nil {
				return err
			}
		}
		if len(needY) > 0 {
			rows, err := conn.Query(ctx, `SELECT t.oid, t.typtype, t.typcategory, t.typbasetype, coalesce(b.typcategory, '')
				FROM pg_catalog.pg_type t LEFT JOIN pg_catalog.pg_type b ON b.oid = t.typbasetype
				WHERE t.oid = ANY($1::oid[])`, needY)
			if err != nil {
				return err
			}
			for rows.Next() {
				var oid, base uint32
				var typtype, cat, baseCat string
				if err := rows.Scan(&oid, &typtype, &cat, &base, &baseCat); err != nil {
					return err
				}
				kinds[oid] = userType(typtype, cat, base, baseCat)
			}
			if err := rows.Err(); err != nil {
				return err
			}
		}
		k.cacheMu.Lock()
		for _, o := range needT {
			k.tables[o] = names[o] // unknown OIDs stay "" and are not asked again
		}
		for _, o := range needY {
			if v, ok := kinds[o]; ok {
				k.types[o] = v
			} else {
				k.types[o] = protocols.TypeOther
			}
		}
		k.cacheMu.Unlock()
		return nil
	})
}

// userType maps a type created in the database to a family by its catalog
// category: domains follow their base type, string-like types (citext, a
// domain over text) are text, enums and composite types stay opaque.
func userType(typtype, cat string, base uint32, baseCat string) protocols.ValueType {
	if typtype == "d" {
		if base != 0 && base < firstNormalOID {
			return valueType(base)
		}
		cat = baseCat
	}
	switch cat {
	case "S":
		return protocols.TypeText
	case "A":
		return protocols.TypeArray
	case "N":
		return protocols.TypeNumber
	case "D", "T":
		return protocols.TypeTime
	case "B":
		return protocols.TypeBool
	case "I":
		return protocols.TypeNet
	}
	return protocols.TypeOther
}

func (k *catalog) table(oid uint32) string {
	k.cacheMu.RLock()
	defer k.cacheMu.RUnlock()
	return k.tables[oid]
}

func (k *catalog) valueType(oid uint32) protocols.ValueType {
	if oid < firstNormalOID {
		return valueType(oid)
	}
	k.cacheMu.RLock()
	defer k.cacheMu.RUnlock()
	if v, ok := k.types[oid]; ok {
		return v
	}
	return protocols.TypeOther
}

// copyColumns returns the columns a COPY ... TO STDOUT sends, in order.
func (k *catalog) copyColumns(spec *copySpec) ([]field, error) {
	ctx, cancel := context.WithTimeout(context.Background(), catalogTimeout)
	defer cancel()
	var out []field
	err := k.use(ctx, func(conn *pgx.Conn) error {
		if spec.query != "" {
			// Describing a prepared statement runs nothing.
			sd, err := conn.PgConn().Prepare(ctx, "", spec.query, nil)
			if err != nil {
				return err
			}
			for _, f := range sd.Fields {
				out = append(out, field{name: f.Name, tableOID: f.TableOID, typeOID: f.DataTypeOID})
			}
			return nil
		}
		rows, err := conn.Query(ctx, `SELECT a.attname, a.atttypid, a.attrelid FROM pg_catalog.pg_attribute a
			WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
			ORDER BY a.attnum`, spec.relation)
		if err != nil {
			return err
		}
		all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (field, error) {
			var f field
			err := r.Scan(&f.name, &f.typeOID, &f.tableOID)
			return f, err
		})
		if err != nil {
			return err
		}
		if len(all) == 0 {
			return fmt.Errorf("relation %s not found", spec.relation)
		}
		if len(spec.columns) == 0 {
			out = all
			return nil
		}
		for _, name := range spec.columns {
			found := false
			for _, f := range all {
				if f.name == name {
					out, found = append(out, f), true
					break
				}
			}
			if !found {
				return fmt.Errorf("column %q of %s not found", name, spec.relation)
			}
		}
		return nil
	})
	return out, err
}

// quoteIdent quotes an identifier as PostgreSQL's quote_ident would always.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
