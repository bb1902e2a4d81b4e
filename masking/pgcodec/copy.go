package pgcodec

import (
	"errors"
	"fmt"

	"github.com/airlock-gw/airlock/protocols"
)

// COPY … TO STDOUT sends one data line per row, in PostgreSQL's text format
// (delimited fields, backslash escapes, \N for NULL) or CSV (quoted fields,
// doubled quotes, unquoted empty NULL). Masking whole lines as free text
// sees the detectors but not the columns; a CopyMasker splits each line
// into its fields, decodes them, masks them as a row with a RowMasker (so
// column rules apply), and re-encodes only the fields that changed.

// ErrCopyFields reports a COPY line that does not split into the planned
// number of fields; the rows cannot be masked by column, so the engine must
// stop the COPY (fail closed).
var ErrCopyFields = errors.New("copy line does not match its columns")

// CopyFormat describes COPY data lines. The zero value is the text format
// with its defaults.
type CopyFormat struct {
	CSV bool
	// Delimiter separates fields: default tab (text) or ',' (CSV).
	Delimiter byte
	// Null is the NULL marker: default `\N` (text) or "" (CSV, unquoted).
	Null *string
	// Quote and Escape are CSV's: default '"', and Escape defaults to Quote.
	Quote, Escape byte
}

func (f CopyFormat) withDefaults() CopyFormat {
	if f.Delimiter == 0 {
		f.Delimiter = '\t'
		if f.CSV {
			f.Delimiter = ','
		}
	}
	if f.Null == nil {
		null := `\N`
		if f.CSV {
			null = ""
		}
		f.Null = &null
	}
	if f.Quote == 0 {
		f.Quote = '"'
	}
	if f.Escape == 0 {
		f.Escape = f.Quote
	}
	return f
}

// CopyMasker masks the data lines of one COPY … TO STDOUT. It is used by
// one goroutine; a returned line is valid until the next call.
type CopyMasker struct {
	rm     protocols.RowMasker
	f      CopyFormat
	n      int
	bounds [][2]int // raw field bounds in the line
	dec    []byte   // decoded fields
	vals   [][]byte
	orig   [][]byte
	out    []byte
}

// PlanCopy plans masking for COPY data lines whose fields are cols, in
// order, with Binary false, by m's Plan. COPY output is plain text for the
// client (no driver decodes it by type), so columns whose type is unknown
// may be given as TypeText: detected entities are then replaced rather
// than the field nulled. It returns nil when no column needs work. Binary
// COPY is not supported: refuse it while masking applies.
func PlanCopy(m protocols.Masker, cols []protocols.Column, f CopyFormat) *CopyMasker {
	rm := m.Plan(cols)
	if rm == nil {
		return nil
	}
	return &CopyMasker{rm: rm, f: f.withDefaults(), n: len(cols)}
}

// MaskLine masks one data line (a row and its line end) and returns it, or
// line itself when nothing changed. It fails with ErrCopyFields when the
// line does not hold the planned number of fields.
func (c *CopyMasker) MaskLine(line []byte) ([]byte, error) {
	body, eol := line, 0
	for eol < 2 && len(body) > 0 && (body[len(body)-1] == '\n' || body[len(body)-1] == '\r') {
		body, eol = body[:len(body)-1], eol+1
	}
	if err := c.split(body); err != nil {
		return nil, err
	}
	copy(c.orig, c.vals)
	if !c.rm.MaskRow(c.vals) {
		return line, nil
	}
	out := c.out[:0]
	for i, b := range c.bounds {
		if i > 0 {
			out = append(out, c.f.Delimiter)
		}
		v, o := c.vals[i], c.orig[i]
		switch {
		case (v == nil) == (o == nil) && len(v) == len(o) && (len(v) == 0 || &v[0] == &o[0]):
			out = append(out, body[b[0]:b[1]]...)
		case v == nil:
			out = append(out, *c.f.Null...)
		case c.f.CSV:
			out = c.appendCSV(out, v)
		default:
			out = c.appendText(out, v)
		}
	}
	out = append(out, line[len(body):]...)
	c.out = out
	return out, nil
}

// split finds the fields of body and decodes them into c.vals.
func (c *CopyMasker) split(body []byte) error {
	c.bounds, c.dec = c.bounds[:0], c.dec[:0]
	f := c.f
	type field struct {
		start, end int // decoded bytes in c.dec
		null       bool
	}
	var fields [64]field
	fs := fields[:0]
	for i := 0; ; {
		st := i
		ds := len(c.dec)
		quoted := false
		if f.CSV && i < len(body) && body[i] == f.Quote {
			quoted = true
			for i++; ; i++ {
				if i >= len(body) {
					return fmt.Errorf("%w: unterminated quoted field", ErrCopyFields)
				}
				ch := body[i]
				if ch == f.Escape && i+1 < len(body) && (body[i+1] == f.Quote || (f.Escape != f.Quote && body[i+1] == f.Escape)) {
					c.dec = append(c.dec, body[i+1])
					i++
					continue
				}
				if ch == f.Quote {
					i++
					break
				}
				c.dec = append(c.dec, ch)
			}
			if i < len(body) && body[i] != f.Delimiter {
				return fmt.Errorf("%w: bytes after a closing quote", ErrCopyFields)
			}
		} else {
			for i < len(body) && body[i] != f.Delimiter {
				if !f.CSV && body[i] == '\\' && i+1 < len(body) {
					i += c.unescape(body, i)
					continue
				}
				c.dec = append(c.dec, body[i])
				i++
			}
		}
		c.bounds = append(c.bounds, [2]int{st, i})
		fs = append(fs, field{ds, len(c.dec), !quoted && string(body[st:i]) == *f.Null})
		if i >= len(body) {
			break
		}
		i++ // the delimiter
	}
	if len(fs) != c.n {
		return fmt.Errorf("%w: %d fields, want %d", ErrCopyFields, len(fs), c.n)
	}
	if cap(c.orig) < len(fs) {
		c.orig = make([][]byte, len(fs))
	}
	c.vals, c.orig = c.vals[:0], c.orig[:len(fs)]
	for _, fd := range fs {
		var v []byte
		if !fd.null {
			v = c.dec[fd.start:fd.end:fd.end]
			if v == nil {
				v = empty
			}
		}
		c.vals = append(c.vals, v)
	}
	return nil
}

// empty is a non-NULL empty field.
var empty = []byte{}

// unescape decodes the text-format escape at body[i] ('\\') into c.dec and
// returns its length.
func (c *CopyMasker) unescape(body []byte, i int) int {
	e := body[i+1]
	switch e {
	case 'b':
		c.dec = append(c.dec, '\b')
	case 'f':
		c.dec = append(c.dec, '\f')
	case 'n':
		c.dec = append(c.dec, '\n')
	case 'r':
		c.dec = append(c.dec, '\r')
	case 't':
		c.dec = append(c.dec, '\t')
	case 'v':
		c.dec = append(c.dec, '\v')
	case 'x':
		v, n := 0, 0
		for n < 2 && i+2+n < len(body) && isHex(body[i+2+n]) {
			v = v<<4 | int(hexVal(body[i+2+n]))
			n++
		}
		if n == 0 {
			c.dec = append(c.dec, 'x')
			return 2
		}
		c.dec = append(c.dec, byte(v))
		return 2 + n
	default:
		if isOctal(e) {
			v, n := 0, 0
			for n < 3 && i+1+n < len(body) && isOctal(body[i+1+n]) {
				v = v<<3 | int(body[i+1+n]-'0')
				n++
			}
			c.dec = append(c.dec, byte(v))
			return 1 + n
		}
		c.dec = append(c.dec, e)
	}
	return 2
}

func hexVal(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// appendText encodes a field in the text format.
func (c *CopyMasker) appendText(out, v []byte) []byte {
	for _, ch := range v {
		switch ch {
		case '\\':
			out = append(out, '\\', '\\')
		case '\n':
			out = append(out, '\\', 'n')
		case '\r':
			out = append(out, '\\', 'r')
		case '\t':
			out = append(out, '\\', 't')
		case '\b':
			out = append(out, '\\', 'b')
		case '\f':
			out = append(out, '\\', 'f')
		case '\v':
			out = append(out, '\\', 'v')
		default:
			if ch == c.f.Delimiter {
				out = append(out, '\\')
			}
			out = append(out, ch)
		}
	}
	return out
}

// appendCSV encodes a field in CSV, always quoted (so it is never read as
// NULL).
func (c *CopyMasker) appendCSV(out, v []byte) []byte {
	q, e := c.f.Quote, c.f.Escape
	out = append(out, q)
	for _, ch := range v {
		if ch == q || ch == e {
			out = append(out, e)
		}
		out = append(out, ch)
	}
	return append(out, q)
}
