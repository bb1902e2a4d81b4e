package httpproxy

import (
	"bufio"
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/airlock-gw/airlock/protocols"
)

// bodyKind is how a body is masked, by its media type.
type bodyKind uint8

const (
	kindText   bodyKind = iota // masked whole as free text (also an unknown type)
	kindJSON                   // masked whole as JSON: paths and detectors
	kindLines                  // JSON lines, masked line by line
	kindEvents                 // server-sent events, masked event by event
	kindBinary                 // opaque: passed (secrets scrubbed) or refused
	kindGRPC                   // gRPC messages (grpc.go)
)

func kindOf(contentType string) bodyKind {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(contentType))
	}
	switch {
	case mt == "":
		return kindText
	case mt == "text/event-stream":
		return kindEvents
	case mt == "application/x-ndjson" || mt == "application/jsonl" || mt == "application/x-jsonlines" ||
		mt == "application/json-seq" || mt == "application/stream+json":
		return kindLines
	case mt == "application/json" || strings.HasSuffix(mt, "+json") || mt == "application/graphql-response+json":
		return kindJSON
	case strings.HasPrefix(mt, "application/grpc"):
		return kindGRPC
	case strings.HasPrefix(mt, "text/"), mt == "application/xml", strings.HasSuffix(mt, "+xml"),
		mt == "application/x-www-form-urlencoded", mt == "application/javascript", mt == "application/graphql",
		mt == "application/yaml", mt == "application/x-yaml":
		return kindText
	}
	return kindBinary
}

// errTooLarge: a body that must be masked whole is larger than body.mask.
var errTooLarge = errors.New("body too large to mask")

// errEncoding: a body in a content coding Airlock cannot decode, which it
// therefore cannot mask.
var errEncoding = errors.New("unsupported content coding")

// decoded returns body with its content codings undone (gzip, br, zstd,
// deflate); Airlock sends it on uncompressed. An unknown coding fails.
func decoded(body io.ReadCloser, encoding string) (io.ReadCloser, error) {
	var codings []string
	for _, c := range strings.Split(encoding, ",") {
		if c = strings.ToLower(strings.TrimSpace(c)); c != "" && c != "identity" {
			codings = append(codings, c)
		}
	}
	r := io.Reader(body)
	closers := []io.Closer{body}
	// Codings are listed in the order they were applied: undo the last first.
	for i := len(codings) - 1; i >= 0; i-- {
		switch codings[i] {
		case "gzip", "x-gzip":
			zr, err := gzip.NewReader(r)
			if err != nil {
				body.Close()
				return nil, fmt.Errorf("gzip: %w", err)
			}
			r = zr
		case "br":
			r = brotli.NewReader(r)
		case "zstd":
			zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(256<<20))
			if err != nil {
				body.Close()
				return nil, fmt.Errorf("zstd: %w", err)
			}
			closers = append(closers, closerFunc(func() error { zr.Close(); return nil }))
			r = zr
		case "deflate":
			fr := flate.NewReader(r)
			closers = append(closers, fr)
			r = fr
		default:
			body.Close()
			return nil, fmt.Errorf("%w %q", errEncoding, codings[i])
		}
	}
	return &readCloser{Reader: r, closers: closers}, nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

type readCloser struct {
	io.Reader
	closers []io.Closer
}

func (r *readCloser) Close() error {
	var err error
	for i := len(r.closers) - 1; i >= 0; i-- {
		if e := r.closers[i].Close(); e != nil && err == nil {
			err = e
		}
	}
	return err
}

// acceptedEncodings filters a caller's Accept-Encoding to the codings
// Airlock decodes, so the upstream never answers in one it cannot mask.
func acceptedEncodings(v string) string {
	var out []string
	for _, part := range strings.Split(v, ",") {
		name, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "gzip", "br", "zstd", "deflate", "identity":
			out = append(out, strings.TrimSpace(part))
		}
	}
	return strings.Join(out, ", ")
}

// unit reads the next unit a transform works on; io.EOF after the last.
type unit func(r *bufio.Reader) ([]byte, error)

// transform is a body masked unit by unit as it streams: a whole document,
// a line, an event, or a chunk of opaque bytes. Each Read returns at most
// the rest of one unit, so a stream of events leaves event by event.
type transform struct {
	src   io.ReadCloser
	br    *bufio.Reader
	next  unit
	apply func([]byte) []byte
	out   []byte
	err   error
}

// readers keeps the transforms' 32 KiB read buffers between bodies: one
// per proxied body was the largest allocation a request made.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 32<<10) }}

func newTransform(src io.ReadCloser, next unit, apply func([]byte) []byte) *transform {
	br := readers.Get().(*bufio.Reader)
	br.Reset(src)
	return &transform{src: src, br: br, next: next, apply: apply}
}

// release gives the read buffer back once the body has ended and every
// unit read from it has been handed on (a unit may point into it until
// then). Close does not: a Read may still be under way.
func (t *transform) release() {
	if t.br != nil {
		t.br.Reset(nil)
		readers.Put(t.br)
		t.br = nil
	}
}

func (t *transform) Read(p []byte) (int, error) {
	for len(t.out) == 0 {
		if t.err != nil {
			t.release()
			return 0, t.err
		}
		u, err := t.next(t.br)
		if len(u) > 0 {
			t.out = t.apply(u)
		}
		t.err = err
	}
	n := copy(p, t.out)
	t.out = t.out[n:]
	return n, nil
}

func (t *transform) Close() error { return t.src.Close() }

// wholeUnit reads the whole body as one unit, at most limit bytes.
func wholeUnit(limit int64) unit {
	return func(r *bufio.Reader) ([]byte, error) {
		b, err := io.ReadAll(io.LimitReader(r, limit+1))
		if err != nil {
			return nil, err
		}
		if int64(len(b)) > limit {
			return nil, errTooLarge
		}
		return b, io.EOF
	}
}

// lineUnit reads one line, its newline included, at most limit bytes.
func lineUnit(limit int64) unit {
	return func(r *bufio.Reader) ([]byte, error) {
		var line []byte
		for {
			frag, err := r.ReadSlice('\n')
			line = append(line, frag...)
			if int64(len(line)) > limit {
				return nil, errTooLarge
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			return line, err
		}
	}
}

// eventUnit reads one server-sent event: lines up to and including the
// blank line that ends it (https://html.spec.whatwg.org/multipage/server-sent-events.html).
func eventUnit(limit int64) unit {
	lines := lineUnit(limit)
	return func(r *bufio.Reader) ([]byte, error) {
		var ev []byte
		for {
			line, err := lines(r)
			ev = append(ev, line...)
			if int64(len(ev)) > limit {
				return nil, errTooLarge
			}
			if err != nil {
				return ev, err
			}
			if t := bytes.TrimRight(line, "\r\n"); len(t) == 0 {
				return ev, nil
			}
		}
	}
}

// chunkUnit reads opaque bytes as they come, keeping back the last
// keep-1 bytes until more arrive, so that a secret split between two
// reads is still found whole.
func chunkUnit(keep int) unit {
	var carry []byte
	buf := make([]byte, 32<<10)
	return func(r *bufio.Reader) ([]byte, error) {
		n, err := r.Read(buf)
		data := append(carry, buf[:n]...)
		carry = nil
		if err != nil {
			return data, err
		}
		if k := keep - 1; k > 0 && len(data) > k {
			carry = append([]byte(nil), data[len(data)-k:]...)
			data = data[:len(data)-k]
		} else if k > 0 {
			carry, data = data, nil
		}
		return data, nil
	}
}

// scrubber replaces the upstream credential's values wherever they
// appear: a response that echoes the key back (a debug endpoint) must not
// hand it to the caller.
type scrubber struct {
	secrets [][]byte
	longest int
}

const scrubbed = "[removed]"

func newScrubber(secrets []string) *scrubber {
	s := &scrubber{}
	for _, v := range secrets {
		s.secrets = append(s.secrets, []byte(v))
		s.longest = max(s.longest, len(v))
	}
	return s
}

func (s *scrubber) bytes(b []byte) []byte {
	for _, v := range s.secrets {
		if bytes.Contains(b, v) {
			b = bytes.ReplaceAll(b, v, []byte(scrubbed))
		}
	}
	return b
}

func (s *scrubber) string(v string) string {
	for _, sec := range s.secrets {
		if strings.Contains(v, string(sec)) {
			v = strings.ReplaceAll(v, string(sec), scrubbed)
		}
	}
	return v
}

// header scrubs header values in place.
func (s *scrubber) header(h http.Header) {
	for k, vs := range h {
		for i, v := range vs {
			if nv := s.string(v); nv != v {
				h[k][i] = nv
			}
		}
	}
}

// maskDocument masks one unit of a body of kind k for the caller (m nil:
// nothing configured) and scrubs the credential from it.
func maskDocument(m protocols.Masker, k bodyKind, b []byte, sc *scrubber) []byte {
	if m != nil {
		switch k {
		case kindJSON, kindLines:
			b = maskJSON(m, b)
		case kindEvents:
			b = maskEvent(m, b)
		default:
			b = m.Text(b)
		}
	}
	return sc.bytes(b)
}

// jsonMasker is masking's Masker.JSON: paths, then detectors.
type jsonMasker interface {
	JSON(b []byte) []byte
}

// maskJSON masks a JSON document, or a line of one, keeping surrounding
// space; a masker without JSON support masks it as text.
func maskJSON(m protocols.Masker, b []byte) []byte {
	jm, ok := m.(jsonMasker)
	if !ok {
		return m.Text(b)
	}
	start, end := 0, len(b)
	for start < end && isSpace(b[start]) {
		start++
	}
	for end > start && isSpace(b[end-1]) {
		end--
	}
	if start == end {
		return b
	}
	doc := b[start:end]
	out := jm.JSON(doc)
	if len(out) == len(doc) && &out[0] == &doc[0] {
		return b
	}
	res := make([]byte, 0, len(b)-len(doc)+len(out))
	res = append(res, b[:start]...)
	res = append(res, out...)
	return append(res, b[end:]...)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// maskEvent masks one server-sent event: each data line as JSON when it
// is JSON, as text otherwise; the other fields as text.
func maskEvent(m protocols.Masker, ev []byte) []byte {
	var out []byte
	changed := false
	for rest := ev; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i+1], rest[i+1:]
		} else {
			rest = nil
		}
		masked := line
		if v, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			masked = append([]byte("data:"), maskJSON(m, v)...)
		} else {
			masked = m.Text(line)
		}
		if !bytes.Equal(masked, line) {
			changed = true
		}
		out = append(out, masked...)
	}
	if !changed {
		return ev
	}
	return out
}

// eventData returns the data of a server-sent event's data lines.
func eventData(ev []byte, each func(data []byte)) {
	for rest := ev; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if v, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r"), []byte("data:")); ok {
			each(bytes.TrimSpace(v))
		}
	}
}
