package postgres

import (
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/airlock-gw/airlock/protocols"
)

// valueType maps a built-in type OID to its neutral family. Types created in
// the database (enums, domains, citext) have OIDs assigned at CREATE time and
// map to TypeOther, whose masked values become NULL.
func valueType(oid uint32) protocols.ValueType {
	switch oid {
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID, pgtype.QCharOID,
		pgtype.XMLOID, pgtype.UnknownOID:
		return protocols.TypeText
	case pgtype.JSONOID, pgtype.JSONBOID, pgtype.JSONPathOID:
		return protocols.TypeJSON
	case pgtype.ByteaOID:
		return protocols.TypeBytes
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.NumericOID, pgtype.Float4OID,
		pgtype.Float8OID, pgtype.OIDOID, pgtype.XIDOID, pgtype.CIDOID, 790 /* money */ :
		return protocols.TypeNumber
	case pgtype.BoolOID:
		return protocols.TypeBool
	case pgtype.DateOID, pgtype.TimeOID, pgtype.TimetzOID, pgtype.TimestampOID,
		pgtype.TimestamptzOID, pgtype.IntervalOID:
		return protocols.TypeTime
	case pgtype.UUIDOID:
		return protocols.TypeUUID
	case pgtype.InetOID, pgtype.CIDROID, pgtype.MacaddrOID, 774 /* macaddr8 */ :
		return protocols.TypeNet
	case pgtype.TextArrayOID, pgtype.VarcharArrayOID, pgtype.BPCharArrayOID, pgtype.NameArrayOID,
		pgtype.JSONArrayOID, pgtype.JSONBArrayOID, pgtype.Int2ArrayOID, pgtype.Int4ArrayOID,
		pgtype.Int8ArrayOID, pgtype.NumericArrayOID, pgtype.Float4ArrayOID, pgtype.Float8ArrayOID,
		pgtype.BoolArrayOID, pgtype.UUIDArrayOID, pgtype.ByteaArrayOID, pgtype.DateArrayOID,
		pgtype.TimestampArrayOID, pgtype.TimestamptzArrayOID, pgtype.InetArrayOID,
		pgtype.CIDRArrayOID, pgtype.XMLArrayOID:
		return protocols.TypeArray
	}
	return protocols.TypeOther
}

// textOffset is the count of framing bytes before the text of a binary
// value: jsonb's binary form starts with a version byte.
func textOffset(oid uint32, binary bool) int {
	if binary && oid == pgtype.JSONBOID {
		return 1
	}
	return 0
}
