package httpproxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/airlock-gw/airlock/protocols"
)

// gRPC (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md)
// passes through as HTTP/2 requests: the full method name is the path,
// the credential goes into the metadata as a header, and the policy
// decides per method (sqlrisk/httpreq). A refusal is a trailers-only
// response with PERMISSION_DENIED (or FAILED_PRECONDITION while a
// reviewer has yet to decide). Messages are relayed one by one as their
// length-prefixed frames arrive, so streaming calls stream; where the
// connection names a descriptor set (descriptors:), each message is
// decoded, its strings masked, encoded again and recorded as JSON, and
// with reflection: on, the upstream's server reflection is asked instead;
// otherwise messages pass as opaque bytes. Status and metadata are
// recorded.

// gRPC status codes Airlock answers with.
const (
	grpcFailedPrecondition = 9
	grpcPermissionDenied   = 7
	grpcUnavailable        = 14
)

// isGRPC reports a gRPC or gRPC-Web request.
func isGRPC(r *http.Request) bool {
	return kindOf(r.Header.Get("Content-Type")) == kindGRPC
}

// grpcSchema finds the message types of a connection's methods: in its
// descriptor set, loaded once, and, with reflection on, from the
// upstream's server reflection (grpc.reflection.v1), asked once per
// service (again after a minute when it failed).
type grpcSchema struct {
	path    string                                                                             // descriptor set file, "" for none
	reflect func(ctx context.Context, service string) (*descriptorpb.FileDescriptorSet, error) // nil without reflection

	once sync.Once
	err  error

	mu      sync.Mutex
	methods map[string]protoreflect.MethodDescriptor // by full name "/pkg.Service/Method"
	asked   map[string]time.Time                     // services asked by reflection
}

func (g *grpcSchema) load() error {
	g.once.Do(func() {
		g.methods, g.asked = map[string]protoreflect.MethodDescriptor{}, map[string]time.Time{}
		if g.path == "" {
			return
		}
		b, err := os.ReadFile(g.path)
		if err != nil {
			g.err = err
			return
		}
		var set descriptorpb.FileDescriptorSet
		if err := proto.Unmarshal(b, &set); err != nil {
			g.err = fmt.Errorf("descriptors %s: %w", g.path, err)
			return
		}
		g.err = g.add(&set)
	})
	return g.err
}

// add indexes the methods of a descriptor set's services.
func (g *grpcSchema) add(set *descriptorpb.FileDescriptorSet) error {
	files, err := protodesc.NewFiles(set)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	files.RangeFiles(func(f protoreflect.FileDescriptor) bool {
		for i := 0; i < f.Services().Len(); i++ {
			sd := f.Services().Get(i)
			for j := 0; j < sd.Methods().Len(); j++ {
				md := sd.Methods().Get(j)
				g.methods["/"+string(sd.FullName())+"/"+string(md.Name())] = md
			}
		}
		return true
	})
	return nil
}

// reflectAgain is how long a service reflection could not describe is
// left alone.
const reflectAgain = time.Minute

// method returns the descriptor of a method, nil when unknown: its
// messages then pass as opaque bytes.
func (g *grpcSchema) method(ctx context.Context, path string) protoreflect.MethodDescriptor {
	if g == nil || g.load() != nil {
		return nil
	}
	g.mu.Lock()
	md := g.methods[path]
	service, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	ask := md == nil && g.reflect != nil && service != "" && time.Since(g.asked[service]) > reflectAgain
	if ask {
		g.asked[service] = time.Now()
	}
	g.mu.Unlock()
	if !ask {
		return md
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	set, err := g.reflect(rctx, service)
	if err != nil || g.add(set) != nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.methods[path]
}

// newReflector asks the upstream's server reflection for the files that
// describe a service, with the held credential as metadata.
func newReflector(c *compiled) func(ctx context.Context, service string) (*descriptorpb.FileDescriptorSet, error) {
	var (
		once sync.Once
		conn *grpc.ClientConn
		err  error
	)
	return func(ctx context.Context, service string) (*descriptorpb.FileDescriptorSet, error) {
		once.Do(func() {
			creds := insecure.NewCredentials()
			if c.dial.tls != nil {
				creds = credentials.NewTLS(c.dial.tls)
			}
			conn, err = grpc.NewClient("passthrough:///"+c.base.Host, grpc.WithTransportCredentials(creds))
		})
		if err != nil {
			return nil, err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.base.String(), nil)
		if err := c.cred.apply(req); err != nil {
			return nil, err
		}
		var md []string
		for k, vs := range req.Header {
			for _, v := range vs {
				md = append(md, strings.ToLower(k), v)
			}
		}
		stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(metadata.AppendToOutgoingContext(ctx, md...))
		if err != nil {
			return nil, err
		}
		defer stream.CloseSend()
		if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: service}}); err != nil {
			return nil, err
		}
		res, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		fds := res.GetFileDescriptorResponse()
		if fds == nil {
			return nil, fmt.Errorf("reflection does not describe %s", service)
		}
		set := &descriptorpb.FileDescriptorSet{}
		for _, b := range fds.FileDescriptorProto {
			var f descriptorpb.FileDescriptorProto
			if err := proto.Unmarshal(b, &f); err != nil {
				return nil, err
			}
			set.File = append(set.File, &f)
		}
		return set, nil
	}
}

func (p *proxy) serveGRPC(w http.ResponseWriter, r *http.Request, x *exchange, rest string) {
	cmd := &protocols.Command{Protocol: protocols.HTTP, Kind: "grpc", Text: r.Method + " " + rest,
		Payload: &protocols.Payload{Method: r.Method, Path: x.path}}
	dec, err := x.lease.s.Check(r.Context(), cmd)
	if err != nil {
		x.finish(grpcRefusal(w, grpcUnavailable, "the call could not be decided: "+checkErrorText(err)), "")
		return
	}
	if dec.Action != protocols.Allow {
		code, msg := grpcPermissionDenied, dec.Reason
		if dec.ApprovalID != "" {
			code = grpcFailedPrecondition
			msg = fmt.Sprintf("%s; approval request %s (%s/approvals/%s): call again once a reviewer approved it, and it runs once",
				dec.Reason, dec.ApprovalID, p.deps.AdminURL, dec.ApprovalID)
		}
		st := grpcRefusal(w, code, msg)
		x.resHdr = headers(w.Header())
		x.finish(st, dec.Reason)
		return
	}
	md := x.up.grpc.method(r.Context(), mustUnescape(rest))
	var body io.Reader = r.Body
	if md != nil && r.Body != nil {
		in := newTransform(r.Body, frameUnit(int64(x.up.cfg.Body.Mask)),
			p.grpcMasker(x, md.Input(), r.Header.Get("Grpc-Encoding"), func(j []byte) {
				if len(x.reqBody) < 4<<10 {
					x.reqBody = append(x.reqBody, cutBytes(j, 4<<10-len(x.reqBody))...)
				}
			}))
		body = in
	}
	rp := p.reverseProxy(x, rest, func(out *http.Request) {
		out.Body = io.NopCloser(body)
		if md != nil {
			// Responses come uncompressed, so they can be read.
			out.Header.Del("Grpc-Accept-Encoding")
		}
	}, func(res *http.Response) error {
		sc := newScrubber(x.up.cred.secrets())
		sc.header(res.Header)
		x.status = res.StatusCode
		x.resHdr = headers(res.Header)
		if res.Header.Get("Grpc-Status") != "" {
			// A trailers-only answer. The proxy may flush the headers
			// before it knows the body is empty, which would make them
			// headers and leave the call without a status: send them
			// as trailers, which a client reads the same.
			if res.Trailer == nil {
				res.Trailer = http.Header{}
			}
			for _, k := range []string{"Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin"} {
				if vs := res.Header.Values(k); len(vs) > 0 {
					res.Trailer[k] = vs
					res.Header.Del(k)
				}
			}
		}
		x.trailer = res.Trailer
		if md != nil && res.Body != nil {
			x.sampled = true
			res.Body = newTransform(res.Body, frameUnit(int64(x.up.cfg.Body.Mask)),
				p.grpcMasker(x, md.Output(), res.Header.Get("Grpc-Encoding"), func(j []byte) { x.resBody.addSample(j) }))
		}
		if res.Body != nil {
			res.Body = &recordedBody{ReadCloser: res.Body, x: x}
		}
		return nil
	})
	rp.ServeHTTP(w, r)
	x.finish(0, "")
}

// grpcRefusal answers a trailers-only response with a status.
func grpcRefusal(w http.ResponseWriter, code int, msg string) int {
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", fmt.Sprint(code))
	h.Set("Grpc-Message", grpcEscape(msg))
	w.WriteHeader(http.StatusOK)
	return http.StatusOK
}

// grpcEscape percent-encodes a status message as the protocol asks.
func grpcEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// frameUnit reads one length-prefixed message frame, at most limit bytes.
func frameUnit(limit int64) unit {
	return func(r *bufio.Reader) ([]byte, error) {
		var hdr [5]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.ErrUnexpectedEOF {
				return nil, fmt.Errorf("grpc: truncated frame")
			}
			return nil, err
		}
		n := binary.BigEndian.Uint32(hdr[1:])
		if int64(n) > limit {
			return nil, errTooLarge
		}
		frame := make([]byte, 5+int(n))
		copy(frame, hdr[:])
		if _, err := io.ReadFull(r, frame[5:]); err != nil {
			return nil, fmt.Errorf("grpc: truncated message")
		}
		return frame, nil
	}
}

// grpcMasker masks each message frame of type desc: its strings masked
// and scrubbed, encoded again uncompressed. sample gets the masked
// message as JSON for the recording. A message that does not decode
// passes as it came: the schema may be older than the service.
func (p *proxy) grpcMasker(x *exchange, desc protoreflect.MessageDescriptor, encoding string, sample func([]byte)) func([]byte) []byte {
	s := x.lease.s
	sc := newScrubber(x.up.cred.secrets())
	return func(frame []byte) []byte {
		payload := frame[5:]
		if frame[0]&0x80 != 0 {
			// A gRPC-Web trailer frame: the status, as text.
			return sc.bytes(frame)
		}
		if frame[0]&1 == 1 {
			if !strings.EqualFold(encoding, "gzip") {
				return frame
			}
			zr, err := gzip.NewReader(bytes.NewReader(payload))
			if err != nil {
				return frame
			}
			payload, err = io.ReadAll(io.LimitReader(zr, int64(x.up.cfg.Body.Mask)))
			if err != nil {
				return frame
			}
		}
		msg := dynamicpb.NewMessage(desc)
		if err := proto.Unmarshal(payload, msg); err != nil {
			return frame
		}
		maskMessage(msg, func(v string) string { return sc.string(string(s.Text([]byte(v)))) })
		if j, err := protojson.Marshal(msg); err == nil {
			sample(j)
		}
		out, err := proto.Marshal(msg)
		if err != nil {
			return frame
		}
		res := make([]byte, 5, 5+len(out))
		binary.BigEndian.PutUint32(res[1:], uint32(len(out)))
		return append(res, out...)
	}
}

// maskMessage replaces every string field of msg, at any depth, with
// mask's answer.
func maskMessage(msg protoreflect.Message, mask func(string) string) {
	msg.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				switch fd.Kind() {
				case protoreflect.StringKind:
					l.Set(i, protoreflect.ValueOfString(mask(l.Get(i).String())))
				case protoreflect.MessageKind, protoreflect.GroupKind:
					maskMessage(l.Get(i).Message(), mask)
				}
			}
		case fd.IsMap():
			m := v.Map()
			vd := fd.MapValue()
			m.Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				switch vd.Kind() {
				case protoreflect.StringKind:
					m.Set(k, protoreflect.ValueOfString(mask(mv.String())))
				case protoreflect.MessageKind:
					maskMessage(mv.Message(), mask)
				}
				return true
			})
		case fd.Kind() == protoreflect.StringKind:
			msg.Set(fd, protoreflect.ValueOfString(mask(v.String())))
		case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
			maskMessage(v.Message(), mask)
		}
		return true
	})
}
