package postgres

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/transport"
	"github.com/airlock-gw/airlock/session"
)

// benchSession is a session whose sockets are in-memory: the client side
// writes to io.Discard and the upstream side to a buffer.
func benchSession(b *testing.B) *relay {
	gw, flow := testFlow(b)
	e := New()
	e.gateway, e.log = gw, slog.New(slog.DiscardHandler)
	s := &relay{engine: e, flow: flow, clientOut: transport.NewWriter(io.Discard),
		up: &upstream{w: bufio.NewWriterSize(io.Discard, 16<<10)}, log: e.log, ended: make(chan struct{})}
	s.results = flow.Results(s)
	return s
}

// testFlow is a started session of the session flow on a connection
// "bench" whose policy is riskPolicy, judged by keywordClassifier.
func testFlow(tb testing.TB) (*session.Gateway, *session.Session) {
	c := &protocols.Connection{Name: "bench", Protocol: protocols.Postgres, Policy: riskPolicy{}, Allow: protocols.Principals{"*"}}
	gw, err := session.New(session.Options{Auth: testAuth{"alice": "t"}, Classifier: keywordClassifier{},
		Connections: map[string]*protocols.Connection{"bench": c}})
	if err != nil {
		tb.Fatal(err)
	}
	flow, err := gw.Admit(context.Background(), session.Caller{Protocol: protocols.Postgres, User: "alice", Secret: "t", Connection: "bench", Local: true})
	if err != nil {
		tb.Fatal(err)
	}
	if err := flow.Start(); err != nil {
		tb.Fatal(err)
	}
	return gw, flow
}

func dataRowFrame(b *testing.B) []byte {
	row := &pgproto3.DataRow{Values: [][]byte{[]byte("123456"), []byte("Ada Lovelace"), []byte("1815-12-10"), []byte("analytical engine notes, first program")}}
	frame, err := row.Encode(nil)
	if err != nil {
		b.Fatal(err)
	}
	return frame
}

// BenchmarkRelayDataRow measures relaying one DataRow in a result set that
// needs no masking and no row recording: it must not allocate.
func BenchmarkRelayDataRow(b *testing.B) {
	s := benchSession(b)
	s.pending.push(pending{kind: pkQuery})
	if err := s.begin([]field{{name: "id", typeOID: 23}, {name: "name", typeOID: 25}, {name: "born", typeOID: 1082}, {name: "note", typeOID: 25}}, time.Time{}); err != nil {
		b.Fatal(err)
	}
	frame := dataRowFrame(b)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := s.upstreamMessage('D', frame, frame[5:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRelayFrames measures the upstream reader's framing and dispatch
// over a realistic stream: RowDescription, 100 DataRows, CommandComplete,
// ReadyForQuery per simple query.
func BenchmarkRelayFrames(b *testing.B) {
	s := benchSession(b)
	var stream []byte
	stream, _ = (&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{
		{Name: []byte("id"), DataTypeOID: 23}, {Name: []byte("name"), DataTypeOID: 25},
		{Name: []byte("born"), DataTypeOID: 1082}, {Name: []byte("note"), DataTypeOID: 25}}}).Encode(stream)
	row := dataRowFrame(b)
	for range 100 {
		stream = append(stream, row...)
	}
	stream, _ = (&pgproto3.CommandComplete{CommandTag: []byte("SELECT 100")}).Encode(stream)
	stream, _ = (&pgproto3.ReadyForQuery{TxStatus: 'I'}).Encode(stream)
	r := bytes.NewReader(stream)
	s.up.r = newFrameReader(r, 32<<10, 0)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		r.Reset(stream)
		s.up.r.r.Reset(r)
		s.pending.push(pending{kind: pkQuery})
		for {
			typ, frame, body, err := s.up.r.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if err := s.upstreamMessage(typ, frame, body); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkClientExtended measures the client side of one prepared
// execution as pgbench -M prepared sends it: Bind, Describe, Execute, Sync.
func BenchmarkClientExtended(b *testing.B) {
	s := benchSession(b)
	var msgs []byte
	msgs, _ = (&pgproto3.Bind{PreparedStatement: "P0_1", Parameters: [][]byte{[]byte("42")}, ResultFormatCodes: []int16{0}}).Encode(msgs)
	msgs, _ = (&pgproto3.Describe{ObjectType: 'P'}).Encode(msgs)
	msgs, _ = (&pgproto3.Execute{}).Encode(msgs)
	msgs, _ = (&pgproto3.Sync{}).Encode(msgs)
	r := bytes.NewReader(msgs)
	fr := newFrameReader(r, 16<<10, 1<<20)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		r.Reset(msgs)
		fr.r.Reset(r)
		for {
			typ, frame, body, err := fr.next()
			if err == io.EOF {
				break
			}
			if err := s.clientMessage(ctx, typ, frame, body); err != nil {
				b.Fatal(err)
			}
		}
		for !s.pending.empty() {
			s.pending.pop()
		}
	}
}

// BenchmarkClientSimpleQuery measures deciding and forwarding one simple
// Query: decode, classify (the test classifier), policy, record, forward.
func BenchmarkClientSimpleQuery(b *testing.B) {
	s := benchSession(b)
	frame, _ := (&pgproto3.Query{String: "SELECT abalance FROM pgbench_accounts WHERE aid = 4242"}).Encode(nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := s.clientMessage(ctx, 'Q', frame, frame[5:]); err != nil {
			b.Fatal(err)
		}
		s.pending.pop()
	}
}
