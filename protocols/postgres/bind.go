package postgres

import "encoding/binary"

// bindHeader is what Airlock needs from a Bind: the names and the result
// formats. It is parsed by hand to avoid pgproto3's per-parameter copies on
// the hottest extended-protocol message.
type bindHeader struct {
	portal, stmt []byte
	nfmt         int
	fmt0         int16
	fmtBytes     []byte
	// pfmt holds the parameter format codes, values the nvals parameter
	// values as sent (length-prefixed), for recording.parameters.
	pfmt, values []byte
	nvals        int
}

func (b bindHeader) formats() []int16 {
	out := make([]int16, b.nfmt)
	for i := range out {
		out[i] = int16(binary.BigEndian.Uint16(b.fmtBytes[2*i:]))
	}
	return out
}

func parseBind(body []byte) (bindHeader, bool) {
	var b bindHeader
	i := 0
	next := func() ([]byte, bool) {
		for j := i; j < len(body); j++ {
			if body[j] == 0 {
				v := body[i:j]
				i = j + 1
				return v, true
			}
		}
		return nil, false
	}
	u16 := func() (int, bool) {
		if i+2 > len(body) {
			return 0, false
		}
		v := int(binary.BigEndian.Uint16(body[i:]))
		i += 2
		return v, true
	}
	var ok bool
	if b.portal, ok = next(); !ok {
		return b, false
	}
	if b.stmt, ok = next(); !ok {
		return b, false
	}
	np, ok := u16()
	if !ok || i+2*np > len(body) {
		return b, false
	}
	b.pfmt = body[i : i+2*np]
	i += 2 * np
	nv, ok := u16()
	if !ok {
		return b, false
	}
	b.nvals, b.values = nv, body[i:]
	for range nv {
		if i+4 > len(body) {
			return b, false
		}
		n := int(int32(binary.BigEndian.Uint32(body[i:])))
		i += 4
		if n > 0 {
			if i+n > len(body) {
				return b, false
			}
			i += n
		} else if n < -1 {
			return b, false
		}
	}
	b.values = b.values[:len(b.values)-(len(body)-i)]
	if b.nfmt, ok = u16(); !ok || i+2*b.nfmt > len(body) {
		return b, false
	}
	b.fmtBytes = body[i : i+2*b.nfmt]
	if b.nfmt > 0 {
		b.fmt0 = int16(binary.BigEndian.Uint16(b.fmtBytes))
	}
	return b, true
}
