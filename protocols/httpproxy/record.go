package httpproxy

import (
	"io"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session/recording"
)

// exchange is one request on its way through the proxy: what is recorded
// of it once its response has been sent.
type exchange struct {
	p       *proxy
	lease   *lease
	up      *compiled
	start   time.Time
	method  string
	path    string // relative to the base URL, with its query
	reqHdr  []protocols.Header
	reqBody []byte // masked sample
	reqSize int64
	status  int
	resHdr  []protocols.Header
	resBody sample
	done    bool
	// llm observes an LLM provider's answer (usage, tool calls).
	llm *llmObserver
	// credErr: the held credential could not be obtained (OAuth2).
	credErr error
	// trailer is the response's trailer (gRPC's status), read once the
	// body has ended.
	trailer http.Header
	// sampled: the response's sample is filled as it is read (gRPC
	// messages as JSON), the body only counted.
	sampled bool
}

// sample keeps the first bytes of a body as it streams, and its size.
type sample struct {
	b    []byte
	size int64
}

func (s *sample) add(p []byte) {
	s.size += int64(len(p))
	s.addSample(p)
}

// addSample keeps p in the sample without counting it in the size: a
// rendering of what was sent (a gRPC message as JSON).
func (s *sample) addSample(p []byte) {
	if room := recording.MaxBodySample - len(s.b); room > 0 {
		s.b = append(s.b, p[:min(room, len(p))]...)
	}
}

// headers lists h for the recording, in a stable order, without the
// credentials: the recorder removes credential headers again.
func headers(h http.Header, drop ...string) []protocols.Header {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []protocols.Header
	for _, k := range names {
		skip := false
		for _, d := range drop {
			if http.CanonicalHeaderKey(d) == k {
				skip = true
			}
		}
		if skip {
			continue
		}
		for _, v := range h[k] {
			out = append(out, protocols.Header{Name: k, Value: v})
		}
	}
	return out
}

// finish records the exchange and its outcome, once.
func (x *exchange) finish(status int, errText string) {
	if x.done {
		return
	}
	x.done = true
	if status != 0 {
		x.status = status
	}
	s := x.lease.s
	if x.llm != nil {
		x.llm.finish()
	}
	for _, k := range []string{"Grpc-Status", "Grpc-Message"} {
		if v := x.trailer.Get(k); v != "" {
			x.resHdr = append(x.resHdr, protocols.Header{Name: k, Value: v})
		}
	}
	res := s.Results(nil)
	m := s.Masker()
	hdr := func(hs []protocols.Header) []protocols.Header {
		if m == nil {
			return hs
		}
		for i := range hs {
			hs[i].Value = string(s.Text([]byte(hs[i].Value)))
		}
		return hs
	}
	err := res.Exchange(protocols.Exchange{Method: x.method, Path: x.path, Status: x.status,
		RequestHeaders: hdr(x.reqHdr), ResponseHeaders: hdr(x.resHdr),
		RequestBody: x.reqBody, ResponseBody: x.resBody.b, RequestBytes: x.reqSize, ResponseBytes: x.resBody.size})
	if err == nil {
		err = res.End(protocols.Result{Tag: strconv.Itoa(x.status), Error: errText}, x.start)
	}
	if err != nil {
		x.lease.broken.Store(true)
	}
	res.Done(x.start)
	x.p.metrics.response(s.Conn.Name, x.status)
}

// recordedBody samples the response body as it is sent and records the
// exchange when the proxy closes it.
type recordedBody struct {
	io.ReadCloser
	x   *exchange
	err error
}

func (b *recordedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.x.sampled {
		b.x.resBody.size += int64(n)
	} else {
		b.x.resBody.add(p[:n])
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func (b *recordedBody) Close() error {
	err := b.ReadCloser.Close()
	msg := ""
	if b.err != nil {
		msg = "response cut: " + errorText(b.err)
	}
	b.x.finish(0, msg)
	return err
}

// errorText words an error for the recording without what it may hold
// of the upstream.
func errorText(err error) string {
	switch err {
	case errTooLarge:
		return "body too large to mask"
	case nil:
		return ""
	}
	return "upstream stream failed"
}
