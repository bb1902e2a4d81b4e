package mysql

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/mysql/wire"
	"github.com/airlock-gw/airlock/session"
)

type anyone struct{}

func (anyone) Authenticate(context.Context, string, string) (protocols.Identity, error) {
	return protocols.Identity{Name: "dev"}, nil
}

type maskAll struct{}

func (maskAll) For(protocols.Identity) protocols.Masker { return maskAll{} }
func (maskAll) Plan(cols []protocols.Column) protocols.RowMasker {
	return maskRows{}
}
func (maskAll) Text(b []byte) []byte { return bytes.ToUpper(b) }

type maskRows struct{}

// MaskRow nulls the first value and lengthens the second.
func (maskRows) MaskRow(values [][]byte) bool {
	if len(values) > 0 {
		values[0] = nil
	}
	if len(values) > 1 && values[1] != nil {
		values[1] = append(bytes.Clone(values[1]), "-masked"...)
	}
	return true
}

// fuzzRelay is a session whose upstream reader is fed packets directly;
// what it writes to the client is read and dropped.
func fuzzRelay(t testing.TB) *relay {
	conn := &protocols.Connection{Name: "m", Protocol: protocols.MySQL, Allow: protocols.Principals{"*"},
		Upstream: &Upstream{Address: "127.0.0.1:1", Database: "d", User: "u"}, Masking: maskAll{}}
	g, err := session.New(session.Options{Auth: anyone{}, Connections: map[string]*protocols.Connection{"m": conn}})
	if err != nil {
		t.Fatal(err)
	}
	flow, err := g.Admit(context.Background(), session.Caller{Protocol: protocols.MySQL, User: "dev", Secret: "x", Connection: "m", Local: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := flow.Start(); err != nil {
		t.Fatal(err)
	}
	client, clientPeer := net.Pipe()
	up, upPeer := net.Pipe()
	go func() { _, _ = io.Copy(io.Discard, clientPeer) }()
	go func() { _, _ = io.Copy(io.Discard, upPeer) }()
	e := New()
	e.gateway = g
	s := newRelay(e, client, &wire.Upstream{Conn: up}, flow, 1, wire.RelayCapabilities)
	t.Cleanup(func() { s.terminate(nil, "done"); flow.Close("done") })
	return s
}

// FuzzUpstreamResponse feeds the upstream reader arbitrary packets as the
// response to each kind of command: it must neither panic nor hang, only
// relay, mask or end the session.
func FuzzUpstreamResponse(f *testing.F) {
	col := wire.AppendColumn(nil, &wire.Column{Catalog: []byte("def"), Schema: []byte("d"), Table: []byte("t"), OrgTable: []byte("t"),
		Name: []byte("e"), OrgName: []byte("email"), Charset: 45, Length: 64, Type: mysql.MYSQL_TYPE_VAR_STRING})
	num := wire.AppendColumn(nil, &wire.Column{Catalog: []byte("def"), Name: []byte("n"), Charset: 63, Length: 11, Type: mysql.MYSQL_TYPE_LONG})
	end := wire.AppendOK(nil, &wire.OK{Header: 0xfe, Status: mysql.SERVER_STATUS_AUTOCOMMIT}, wire.RelayCapabilities)
	join := func(ps ...[]byte) []byte {
		var out []byte
		for _, p := range ps {
			out = append(out, byte(len(p)), byte(len(p)>>8))
			out = append(out, p...)
		}
		return out
	}
	f.Add(uint8(pkQuery), join([]byte{2}, col, num, wire.AppendTextRow(nil, [][]byte{[]byte("a@b.c"), []byte("7")}), end))
	f.Add(uint8(pkExecute), join([]byte{2}, num, col, []byte{0, 0, 7, 0, 0, 0, 3, 'a', 'b', 'c'}, end))
	f.Add(uint8(pkQuery), join(wire.AppendERR(nil, wire.NewError(1146, "no table x@y.z"))))
	f.Add(uint8(pkQuery), join([]byte("\xfb/etc/passwd"), wire.AppendOK(nil, &wire.OK{}, wire.RelayCapabilities)))
	f.Add(uint8(pkPrepare), join(wire.AppendPrepareOK(nil, &wire.PrepareOK{StatementID: 1, Columns: 1, Params: 1}), num, col))
	f.Add(uint8(pkFetch), join([]byte{0, 0, 7, 0, 0, 0}, end))
	f.Add(uint8(pkFieldList), join(col, end))
	f.Add(uint8(pkSimple), join(wire.AppendOK(nil, &wire.OK{}, wire.RelayCapabilities)))
	f.Fuzz(func(t *testing.T, kind uint8, packets []byte) {
		s := fuzzRelay(t)
		st := &statement{id: 1, cmd: command("SELECT 1", "prepare")}
		st.cursorCols, st.cursorTypes = []protocols.Column{{Name: "n", Type: protocols.TypeNumber, Binary: true}}, []byte{mysql.MYSQL_TYPE_LONG}
		p := pending{kind: pendKind(kind % uint8(pkLocal)), stmt: st, prepared: st.cmd, files: []string{"x.csv"}, cursor: true}
		for range 3 {
			_ = s.pending.push(p, nil)
		}
		seq := uint8(1)
		for len(packets) >= 2 {
			n := min(int(packets[0])|int(packets[1])<<8, len(packets)-2)
			payload := packets[2 : 2+n]
			packets = packets[2+n:]
			raw, next := wire.AppendPacket(nil, seq, payload)
			if err := s.upstreamPacket(wire.Packet{Seq: seq, Frames: 1, Payload: raw[4:], Raw: raw}); err != nil {
				return
			}
			seq = next
		}
	})
}
