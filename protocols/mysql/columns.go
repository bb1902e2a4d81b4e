package mysql

import (
	"bytes"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/mysql/wire"
)

// describe turns the result's column definitions into the columns masking
// and the recording read: by their original name and table, so that an
// alias does not escape a column rule.
func (s *relay) describe() error {
	r := &s.res
	if r.lastCols != nil && bytes.Equal(r.defs, r.lastDefs) && r.binary == r.lastBinary {
		r.cols, r.types = r.lastCols, r.lastTypes
		return nil
	}
	cols := make([]protocols.Column, 0, r.ncols)
	types := make([]byte, 0, r.ncols)
	for d := r.defs; len(d) > 0; {
		n := int(d[0]) | int(d[1])<<8 | int(d[2])<<16
		c, err := wire.ParseColumn(d[3 : 3+n])
		if err != nil {
			return badUpstream("column definition")
		}
		cols = append(cols, column(c, r.binary))
		types = append(types, c.Type)
		d = d[3+n:]
	}
	r.cols, r.types = cols, types
	r.lastDefs, r.lastCols, r.lastTypes, r.lastBinary = append(r.lastDefs[:0], r.defs...), cols, types, r.binary
	return nil
}

// appendDef keeps a column definition, length-prefixed, in defs.
func appendDef(defs, payload []byte) []byte {
	n := len(payload)
	return append(append(defs, byte(n), byte(n>>8), byte(n>>16)), payload...)
}

// column is a column definition as masking and the recording see it.
func column(c *wire.Column, binary bool) protocols.Column {
	name := c.OrgName
	if len(name) == 0 {
		name = c.Name
	}
	table := string(c.OrgTable)
	if table != "" && len(c.Schema) > 0 {
		table = string(c.Schema) + "." + table
	}
	col := protocols.Column{Name: string(name), Table: table, Binary: binary, Native: c.NativeType()}
	switch c.Family() {
	case wire.FamilyText:
		col.Type = protocols.TypeText
	case wire.FamilyJSON:
		col.Type = protocols.TypeJSON
	case wire.FamilyBytes:
		// Raw bytes in either protocol.
		col.Type, col.Binary = protocols.TypeBytes, true
	case wire.FamilyNumber:
		col.Type = protocols.TypeNumber
	case wire.FamilyBool:
		col.Type = protocols.TypeBool
	case wire.FamilyTime:
		col.Type = protocols.TypeTime
	}
	return col
}
