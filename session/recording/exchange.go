package recording

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/airlock-gw/airlock/protocols"
)

// MaxBodySample is how many bytes of each HTTP body an exchange frame
// keeps; the frame records the body's whole size besides. An engine need
// not mask more of a body than this.
const MaxBodySample = 4 << 10

// removed replaces what the writer leaves out of an exchange or a path:
// the value of a header that carries a credential, and a query string.
const removed = "[removed]"

// credentialMarks are what the lower-cased name of a header carrying a
// credential contains: Authorization and Proxy-Authorization, Cookie and
// Set-Cookie, X-Api-Key, X-Auth-Token and the like.
var credentialMarks = []string{"authorization", "cookie", "token", "secret", "password", "passwd", "credential", "api-key", "apikey", "api_key"}

// credentialHeader reports whether a header named name carries a
// credential. The engine removes those before recording; the writer
// removes them again, so that one engine's slip cannot put a token on disk.
func credentialHeader(name string) bool {
	n := strings.ToLower(name)
	for _, m := range credentialMarks {
		if strings.Contains(n, m) {
			return true
		}
	}
	return false
}

// pathOnly returns path without its query, which can carry a key
// (?api_key=...): the query is recorded only in the form the engine masks
// into the command's redacted text. A removed query is marked "?[removed]".
func pathOnly(path string) string {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		return path[:i] + "?" + removed
	}
	return path
}

// Exchange implements protocols.Recorder. Header values that carry
// credentials and the query are removed whatever the caller passed; each
// body is cut to MaxBodySample, and with rows: none the response body is
// not kept at all (its size is).
func (r *recorder) Exchange(x protocols.Exchange) error {
	keepResponse := r.mode != RowsNone
	return r.fitted(FrameExchange, func(b []byte, limit int) []byte { return appendExchange(b, &x, keepResponse, limit) })
}

// appendExchange encodes: method, path, status, request headers, response
// headers, request body, response body.
func appendExchange(b []byte, x *protocols.Exchange, keepResponse bool, limit int) []byte {
	b = appendStr(b, x.Method, maxName)
	b = appendStr(b, pathOnly(x.Path), min(limit, maxPath))
	b = binary.AppendUvarint(b, uint64(min(max(x.Status, 0), math.MaxInt32)))
	b = appendHeaders(b, x.RequestHeaders, limit)
	b = appendHeaders(b, x.ResponseHeaders, limit)
	b = appendBody(b, x.RequestBody, x.RequestBytes, true)
	return appendBody(b, x.ResponseBody, x.ResponseBytes, keepResponse)
}

// appendHeaders encodes: count, then per header name and value; the value
// of a credential header is removed.
func appendHeaders(b []byte, hs []protocols.Header, limit int) []byte {
	b = binary.AppendUvarint(b, uint64(len(hs)))
	for _, h := range hs {
		b = appendStr(b, h.Name, limit)
		if credentialHeader(h.Name) {
			b = appendStr(b, removed, limit)
		} else {
			b = appendStr(b, h.Value, limit)
		}
	}
	return b
}

// appendBody encodes: the body's whole size (at least what was passed),
// then a sample of at most MaxBodySample bytes, empty unless keep.
func appendBody(b, body []byte, size int64, keep bool) []byte {
	b = binary.AppendUvarint(b, uint64(max(size, int64(len(body)))))
	var sample []byte
	if keep {
		sample = cut(body, MaxBodySample)
	}
	b = binary.AppendUvarint(b, uint64(len(sample)))
	return append(b, sample...)
}

// ExchangeRecord is a recorded HTTP exchange.
type ExchangeRecord struct {
	Method string
	Path   string
	// Status is the response's status code, 0 when there was none.
	Status          int
	RequestHeaders  []protocols.Header
	ResponseHeaders []protocols.Header
	RequestBody     Body
	ResponseBody    Body
}

// Body is a recorded HTTP body: a sample of its first bytes and its whole
// size.
type Body struct {
	Sample []byte
	Size   int64
}

func decodeExchange(p []byte) (*ExchangeRecord, error) {
	d := dec{b: p}
	x := &ExchangeRecord{Method: d.str(), Path: d.str()}
	status := d.uvarint()
	x.RequestHeaders = d.headers()
	x.ResponseHeaders = d.headers()
	x.RequestBody, x.ResponseBody = d.body(), d.body()
	if d.bad || status > math.MaxInt32 {
		return nil, errPayload
	}
	x.Status = int(status)
	return x, nil
}

func (d *dec) headers() []protocols.Header {
	n := d.count(2)
	if n == 0 {
		return nil
	}
	hs := make([]protocols.Header, n)
	for i := range hs {
		hs[i] = protocols.Header{Name: d.str(), Value: d.str()}
	}
	return hs
}

func (d *dec) body() Body {
	size := d.uvarint()
	sample := d.bytes(d.uvarint())
	if size > math.MaxInt64 || size < uint64(len(sample)) {
		d.bad = true
	}
	return Body{Sample: append([]byte(nil), sample...), Size: int64(size)}
}

// exchangeText renders an exchange: the request line and status, then the
// request's headers and body after ">", the response's after "<".
func (p *textPrinter) exchangeText(x *ExchangeRecord) string {
	var b strings.Builder
	b.WriteString(esc(orDash(x.Method)) + " " + esc(x.Path))
	if x.Status == 0 {
		b.WriteString(" → no response")
	} else {
		fmt.Fprintf(&b, " → %d", x.Status)
	}
	const cont = indent + "          "
	side := func(mark string, hs []protocols.Header, body Body) {
		for _, h := range hs {
			fmt.Fprintf(&b, "\n%s%s %s: %s", cont, mark, esc(h.Name), esc(h.Value))
		}
		if body.Size == 0 {
			return
		}
		fmt.Fprintf(&b, "\n%s%s body, %d byte%s", cont, mark, body.Size, plural(body.Size))
		if int64(len(body.Sample)) < body.Size {
			fmt.Fprintf(&b, " (%d recorded)", len(body.Sample))
		}
		if len(body.Sample) > 0 {
			b.WriteString(": " + bodyText(body.Sample, cont+mark+" "))
		}
	}
	side(">", x.RequestHeaders, x.RequestBody)
	side("<", x.ResponseHeaders, x.ResponseBody)
	return b.String()
}

// bodyText shows a body sample as text, continued line by line behind
// prefix, or as \x hex when it is not UTF-8.
func bodyText(sample []byte, prefix string) string {
	if utf8.Valid(sample) {
		return escMultiline(string(sample), prefix)
	}
	return fmt.Sprintf(`\x%x`, sample)
}

type jsonExchange struct {
	jsonBase
	Method          string      `json:"method"`
	Path            string      `json:"path"`
	Status          int         `json:"status"`
	RequestHeaders  []jsonField `json:"request_headers"`
	RequestBody     any         `json:"request_body,omitempty"`
	RequestBytes    int64       `json:"request_bytes"`
	ResponseHeaders []jsonField `json:"response_headers"`
	ResponseBody    any         `json:"response_body,omitempty"`
	ResponseBytes   int64       `json:"response_bytes"`
}

type jsonField struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func newJSONExchange(b jsonBase, x *ExchangeRecord) jsonExchange {
	return jsonExchange{jsonBase: b, Method: x.Method, Path: x.Path, Status: x.Status,
		RequestHeaders: jsonHeaders(x.RequestHeaders), RequestBody: bodyValue(x.RequestBody), RequestBytes: x.RequestBody.Size,
		ResponseHeaders: jsonHeaders(x.ResponseHeaders), ResponseBody: bodyValue(x.ResponseBody), ResponseBytes: x.ResponseBody.Size}
}

func jsonHeaders(hs []protocols.Header) []jsonField {
	out := make([]jsonField, len(hs))
	for i, h := range hs {
		out[i] = jsonField{h.Name, h.Value}
	}
	return out
}

// bodyValue is a body sample as a row value (the bytes left out are
// omitted), nil for an empty body.
func bodyValue(body Body) any {
	if body.Size == 0 {
		return nil
	}
	return rowValue(Value{Bytes: body.Sample, Omitted: body.Size - int64(len(body.Sample))})
}
