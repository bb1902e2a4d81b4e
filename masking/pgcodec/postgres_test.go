package pgcodec

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/masking"
	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pgTypes maps the OIDs of roundTripQuery's columns to their value type
// and SQL name, as the Postgres engine does for every type.
var pgTypes = map[uint32]struct {
	vt   protocols.ValueType
	name string
}{
	25: {protocols.TypeText, "text"}, 3802: {protocols.TypeJSON, "jsonb"}, 114: {protocols.TypeJSON, "json"},
	1009: {protocols.TypeArray, "text[]"}, 1016: {protocols.TypeArray, "int8[]"}, 199: {protocols.TypeArray, "json[]"},
	869: {protocols.TypeNet, "inet"}, 17: {protocols.TypeBytes, "bytea"}, 1700: {protocols.TypeNumber, "numeric"},
	2249: {protocols.TypeOther, "record"},
}

const roundTripQuery = `SELECT
  'mail jane@example.com, card 4111 1111 1111 1111'::text AS note,
  '{"user":{"email":"jane@example.com","cards":["4111-1111-1111-1111",4111111111111111]},
    "password":"hunter2","e":"jane\u0040example.com","ok":[1,true,null,"plain"]}'::jsonb AS doc,
  '{"note": "say \"hi\" to jane@example.com\n", "n": 4111111111111111}'::json AS raw,
  ARRAY['jane@example.com','plain',NULL,'say "hi" to jane@example.com \ ok','4111111111111111']::text[] AS list,
  ARRAY[4111111111111111, 42]::int8[] AS nums,
  ARRAY['{"e":"jane@example.com"}']::json[] AS docs,
  '10.0.0.1'::inet AS addr,
  convert_to('mail jane@example.com', 'UTF8') AS blob,
  4111111111111111::numeric AS pan,
  ROW('jane@example.com', 1) AS rec`

var roundTripSecrets = [][]byte{
	[]byte("jane@example.com"), []byte("4111111111111111"), []byte("4111 1111 1111 1111"),
	[]byte("4111-1111-1111-1111"), []byte("hunter2"), []byte("10.0.0.1"), []byte("jane\\u0040"),
}

// TestPostgresRoundTrip masks real result values from PostgreSQL in text
// and binary formats under every strategy, then proves that no secret is
// left, that pgx still decodes every value, and that PostgreSQL itself
// accepts every masked value as input of its column's type (jsonb_recv
// checks the version byte, array_in the literal's syntax).
func TestPostgresRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, testenv.PostgresURL(t, "postgres"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	pc := conn.PgConn()
	for _, format := range []int16{pgx.TextFormatCode, pgx.BinaryFormatCode} {
		for _, s := range []masking.Strategy{masking.Redact, masking.Partial, masking.Hash, masking.Null} {
			t.Run(string(s)+map[int16]string{0: "/text", 1: "/binary"}[format], func(t *testing.T) {
				cfg := detectAll(s)
				cfg.Detect[0].Entity = "pii"
				cfg.Detect = append(cfg.Detect, masking.DetectRule{Entity: "secrets", Strategy: masking.Redact})
				m := newMasker(t, cfg)
				fds, vals := fetchRow(ctx, t, pc, format)
				cols := make([]protocols.Column, len(fds))
				for i, fd := range fds {
					pt, ok := pgTypes[fd.DataTypeOID]
					if !ok {
						t.Fatalf("column %s: unexpected type %d", fd.Name, fd.DataTypeOID)
					}
					cols[i] = protocols.Column{Name: fd.Name, Type: pt.vt, Binary: fd.Format == 1}
					if fd.DataTypeOID == 3802 && fd.Format == 1 {
						cols[i].TextOffset = 1
					}
				}
				rm := m.Plan(cols)
				if rm == nil || !rm.MaskRow(vals) {
					t.Fatal("nothing masked")
				}
				for i, v := range vals {
					fd := fds[i]
					for _, sec := range roundTripSecrets {
						if bytes.Contains(v, sec) {
							t.Errorf("%s: %q still holds %q", fd.Name, v, sec)
						}
					}
					if v == nil {
						continue
					}
					var dst any
					if err := conn.TypeMap().Scan(fd.DataTypeOID, fd.Format, v, &dst); err != nil {
						t.Errorf("%s: pgx cannot decode %q: %v", fd.Name, v, err)
					}
					if fd.DataTypeOID == 2249 {
						continue // anonymous records have no input function
					}
					rr := pc.ExecParams(ctx, "SELECT $1::"+pgTypes[fd.DataTypeOID].name, [][]byte{v},
						[]uint32{fd.DataTypeOID}, []int16{fd.Format}, nil)
					if _, err := rr.Close(); err != nil {
						t.Errorf("%s: PostgreSQL rejects masked %q: %v", fd.Name, v, err)
					}
				}
				// Text and JSON are masked in place; a text array too, but
				// a binary array is opaque and nulled.
				if s != masking.Null && (vals[0] == nil || vals[1] == nil || (vals[3] == nil) != (format == 1)) {
					t.Errorf("text, jsonb and text[] values: %q", vals[:4])
				}
				if testing.Verbose() {
					t.Logf("%q", vals)
				}
			})
		}
	}
}

func fetchRow(ctx context.Context, t *testing.T, pc *pgconn.PgConn, format int16) ([]pgconn.FieldDescription, [][]byte) {
	t.Helper()
	rr := pc.ExecParams(ctx, roundTripQuery, nil, nil, nil, []int16{format})
	fds := append([]pgconn.FieldDescription(nil), rr.FieldDescriptions()...)
	var vals [][]byte
	for rr.NextRow() {
		for _, v := range rr.Values() {
			if v != nil {
				v = bytes.Clone(v)
			}
			vals = append(vals, v)
		}
	}
	if _, err := rr.Close(); err != nil {
		t.Fatalf("query: %v", err)
	}
	return fds, vals
}
