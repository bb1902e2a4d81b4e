package postgres

import (
	"encoding/binary"

	"github.com/airlock-gw/airlock/masking/pgcodec"
)

// copyMessage handles the messages of COPY: CopyOutResponse starts masking
// the lines of a COPY … TO STDOUT, CopyData carries them.
func (s *relay) copyMessage(typ byte, frame, body []byte) error {
	r := &s.res
	switch typ {
	case 'H':
		r.copyOut, r.copyBin = true, len(body) > 0 && body[0] == 1
		if err := s.beginCopy(body); err != nil {
			return err
		}
	case 'd':
		if r.copyOut {
			return s.copyData(frame, body)
		}
	case 'c':
		if r.copyAbort != nil {
			return nil
		}
	}
	return s.forward(frame)
}

// beginCopy prepares masking for COPY ... TO STDOUT: it learns which
// columns the COPY sends and plans masking per line, so column rules apply
// as they do to query results. Binary COPY rows are opaque to the masker;
// with masking on they are refused, as is a COPY whose columns cannot be
// known while column rules apply.
func (s *relay) beginCopy(body []byte) error {
	r := &s.res
	head, _ := s.pending.peek()
	r.copyMask, r.copyText, r.copySkip = nil, false, 0
	m := s.flow.Masker()
	if m == nil {
		return nil
	}
	if r.copyBin {
		r.copyAbort = &pgError{Code: codeInsufficientPriv,
			Message: "binary COPY TO STDOUT is not allowed while masking applies to you",
			Hint:    "use COPY ... TO STDOUT in text or CSV format"}
		return nil
	}
	ncols := 0
	if len(body) >= 3 {
		ncols = int(binary.BigEndian.Uint16(body[1:]))
	}
	spec := head.copies.take()
	if spec != nil {
		fields, err := s.engine.catalogFor(s.flow.Conn).copyColumns(spec)
		if err == nil && len(fields) == ncols {
			// The lines are masked field by field, so column rules apply
			// to COPY as to rows.
			if c := pgcodec.PlanCopy(m, s.columns(nil, fields), spec.format()); c != nil {
				r.copyMask = c.MaskLine
			}
			if spec.header {
				r.copySkip = 1
			}
			return nil
		}
		s.log.Warn("cannot tell the columns of a COPY", "err", err, "columns", ncols, "found", len(fields))
	}
	if hasColumnRules(m) {
		r.copyAbort = &pgError{Code: codeInsufficientPriv,
			Message: "Airlock cannot tell which columns this COPY sends, and column masking rules apply to you",
			Hint:    "name the table or use COPY (SELECT ...) TO STDOUT"}
		return nil
	}
	r.copyText = true
	return nil
}

func (s *relay) copyData(frame, body []byte) error {
	r := &s.res
	if r.copyAbort != nil {
		return nil
	}
	out := body
	switch {
	case r.copySkip > 0:
		r.copySkip--
	case r.copyMask != nil:
		var err error
		out, err = r.copyMask(body)
		if err != nil {
			// A line the plan cannot split is never sent unmasked.
			r.copyAbort = &pgError{Code: codeInsufficientPriv,
				Message: "Airlock stopped a COPY whose line it could not mask: " + err.Error()}
			return nil
		}
	case r.copyText:
		out = s.flow.Text(body)
	}
	if sameSlice(out, body) {
		return s.forward(frame)
	}
	buf, sp := beginMessage(r.buf[:0], 'd')
	buf = append(buf, out...)
	r.buf = finishMessage(buf, sp)
	return s.forward(r.buf)
}

// format is how the COPY writes its lines, as masking reads them.
func (c *copySpec) format() pgcodec.CopyFormat {
	f := pgcodec.CopyFormat{CSV: c.csv, Delimiter: c.delim}
	if c.null != nil {
		null := string(c.null)
		f.Null = &null
	}
	return f
}
