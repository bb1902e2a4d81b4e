package recording

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/airlock-gw/airlock/protocols"
)

// jsonPrinter writes one JSON object per line: the header, each frame, and
// the verification report last. FORMAT.md lists the fields.
type jsonPrinter struct {
	w   *bufio.Writer
	enc *json.Encoder
	pg  bool // native type ids are PostgreSQL OIDs, keyed "oid"
}

type jsonBase struct {
	Type  string    `json:"type"`
	Index int64     `json:"index"`
	Time  time.Time `json:"time"`
}

type jsonHeader struct {
	Type   string `json:"type"`
	Format int    `json:"format"`
	Header
}

type jsonCommand struct {
	jsonBase
	*CommandRecord
}

type jsonDecision struct {
	jsonBase
	*protocols.Decision
}

type jsonColumn struct {
	Name   string `json:"name"`
	Table  string `json:"table,omitempty"`
	Type   string `json:"value_type"`
	Binary bool   `json:"binary,omitempty"`
	// OID is the native type id of a PostgreSQL recording, Native that of
	// any other protocol: a reader that knows "oid" may decode it as one.
	OID    uint32 `json:"oid,omitempty"`
	Native uint32 `json:"native_type,omitempty"`
}

type jsonColumns struct {
	jsonBase
	Columns []jsonColumn `json:"columns"`
}

type jsonRow struct {
	jsonBase
	Values []any `json:"values"`
}

// jsonValue is a row value that is not plain text, or was cut short.
type jsonValue struct {
	Text    *string `json:"text,omitempty"`
	Base64  string  `json:"base64,omitempty"`
	Omitted int64   `json:"omitted,omitempty"`
}

type jsonResult struct {
	jsonBase
	Tag        string `json:"tag,omitempty"`
	Rows       int64  `json:"rows"`
	DurationNS int64  `json:"duration_ns"`
	Error      string `json:"error,omitempty"`
	Code       string `json:"code,omitempty"`
}

type jsonParams struct {
	jsonBase
	Portal string `json:"portal"`
	Values []any  `json:"values"`
}

type jsonEnd struct {
	jsonBase
	Reason string `json:"reason"`
}

type jsonSeal struct {
	jsonBase
	Count  int64  `json:"count"`
	Head   string `json:"head"`
	Signed bool   `json:"signed"`
}

type jsonUnknown struct {
	jsonBase
	FrameType uint8  `json:"frame_type"`
	Payload   []byte `json:"payload"`
}

type jsonReport struct {
	Type string `json:"type"`
	OK   bool   `json:"ok"`
	Report
}

var valueTypeNames = [...]string{"other", "text", "json", "bytes", "number", "bool", "time", "uuid", "net", "array"}

func valueTypeName(t protocols.ValueType) string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return "other"
}

func (p *jsonPrinter) emit(v any) error {
	if p.enc == nil {
		p.enc = json.NewEncoder(p.w)
		p.enc.SetEscapeHTML(false)
	}
	return p.enc.Encode(v)
}

func (p *jsonPrinter) header(h Header) error {
	p.pg = h.pgTypes()
	return p.emit(jsonHeader{Type: "header", Format: h.Version, Header: h})
}

func (p *jsonPrinter) frame(f *Frame) error {
	b := jsonBase{Type: f.Type.String(), Index: f.Index, Time: f.Time}
	switch f.Type {
	case FrameCommand:
		return p.emit(jsonCommand{b, f.Command})
	case FrameDecision:
		return p.emit(jsonDecision{b, f.Decision})
	case FrameColumns:
		cols := make([]jsonColumn, len(f.Columns))
		for i, c := range f.Columns {
			cols[i] = jsonColumn{Name: c.Name, Table: c.Table, Type: valueTypeName(c.Type), Binary: c.Binary}
			if p.pg {
				cols[i].OID = c.Native
			} else {
				cols[i].Native = c.Native
			}
		}
		return p.emit(jsonColumns{b, cols})
	case FrameRow:
		vals := make([]any, len(f.Row))
		for i, v := range f.Row {
			vals[i] = rowValue(v)
		}
		return p.emit(jsonRow{b, vals})
	case FrameResult:
		r := f.Result
		return p.emit(jsonResult{b, r.Tag, r.Rows, int64(r.Duration), r.Error, r.Code})
	case FrameParams:
		vals := make([]any, len(f.Params.Values))
		for i, v := range f.Params.Values {
			vals[i] = paramValue(v, p.nativeKey())
		}
		return p.emit(jsonParams{b, f.Params.Portal, vals})
	case FrameReply:
		return p.emit(newJSONReply(b, f.Reply))
	case FrameExchange:
		return p.emit(newJSONExchange(b, f.Exchange))
	case FrameEnd:
		return p.emit(jsonEnd{b, f.End})
	case FrameCheckpoint, FrameTrailer:
		return p.emit(jsonSeal{b, f.Seal.Count, hex.EncodeToString(f.Seal.Head[:]), len(f.Seal.MAC) > 0})
	}
	b.Type = "unknown"
	return p.emit(jsonUnknown{b, uint8(f.Type), f.Payload})
}

// rowValue is null for NULL, a string for UTF-8 text, else an object with
// base64 bytes; a value the writer cut short is an object with omitted set.
func rowValue(v Value) any {
	if v.Null {
		return nil
	}
	if utf8.Valid(v.Bytes) {
		s := string(v.Bytes)
		if v.Omitted == 0 {
			return s
		}
		return jsonValue{Text: &s, Omitted: v.Omitted}
	}
	return jsonValue{Base64: base64.StdEncoding.EncodeToString(v.Bytes), Omitted: v.Omitted}
}

func (p *jsonPrinter) finish(rep Report) error {
	return p.emit(jsonReport{Type: "verification", OK: rep.OK(), Report: rep})
}

// nativeKey is the JSON key of a native type id.
func (p *jsonPrinter) nativeKey() string {
	if p.pg {
		return "oid"
	}
	return "native_type"
}

// paramValue is a row value for text parameters, an object with hex bytes
// (and the native type id under key) for binary ones and an object with
// withheld set for those not recorded.
func paramValue(v ParamValue, key string) any {
	switch {
	case v.Withheld:
		return map[string]any{"withheld": true, "omitted": v.Omitted}
	case v.Null:
		return nil
	case v.Binary:
		o := map[string]any{"hex": hex.EncodeToString(v.Bytes)}
		if v.Omitted > 0 {
			o["omitted"] = v.Omitted
		}
		if v.Native != 0 {
			o[key] = v.Native
		}
		return o
	}
	return rowValue(v.Value)
}
