package recording

import "github.com/jackc/pgx/v5/pgtype"

// pgBinaryText renders a PostgreSQL value recorded in binary format (as
// drivers such as pgx receive ints, timestamps and uuids) in PostgreSQL's
// text form, so a replay reads like psql. pgx's codecs do the work: the
// value is decoded from binary and encoded again as text. ok is false for a
// type pgx does not know or bytes that do not decode.
func pgBinaryText(m *pgtype.Map, oid uint32, b []byte) (string, bool) {
	t, ok := m.TypeForOID(oid)
	if !ok {
		return "", false
	}
	v, err := t.Codec.DecodeValue(m, oid, pgtype.BinaryFormatCode, b)
	if err != nil || v == nil {
		return "", false
	}
	out, err := m.Encode(oid, pgtype.TextFormatCode, v, nil)
	if err != nil || out == nil {
		return "", false
	}
	return string(out), true
}
