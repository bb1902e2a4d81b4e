package postgres

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// FuzzClientMessages feeds arbitrary bytes through the client side's framing
// and message decoding: no panic, framing errors are clean, and the hand
// parser of Bind agrees with pgproto3 wherever pgproto3 accepts a message.
func FuzzClientMessages(f *testing.F) {
	seed := func(msgs ...pgproto3.FrontendMessage) []byte {
		var out []byte
		for _, m := range msgs {
			out, _ = m.Encode(out)
		}
		return out
	}
	f.Add(seed(&pgproto3.Query{String: "SELECT 1"}))
	f.Add(seed(&pgproto3.Parse{Name: "s1", Query: "SELECT $1::int", ParameterOIDs: []uint32{23}},
		&pgproto3.Bind{DestinationPortal: "p", PreparedStatement: "s1", ParameterFormatCodes: []int16{1},
			Parameters: [][]byte{{0, 0, 0, 1}}, ResultFormatCodes: []int16{1, 0}},
		&pgproto3.Describe{ObjectType: 'P', Name: "p"}, &pgproto3.Execute{Portal: "p"}, &pgproto3.Sync{}))
	f.Add(seed(&pgproto3.Bind{Parameters: [][]byte{nil, []byte("x")}}, &pgproto3.Close{ObjectType: 'S', Name: "s1"}))
	f.Add(seed(&pgproto3.CopyData{Data: []byte("1\tx\n")}, &pgproto3.CopyDone{}, &pgproto3.Terminate{}))
	f.Add([]byte{'Q', 0, 0, 0, 3})
	f.Add([]byte{'B', 0, 0, 0, 10, 0, 0, 0, 1, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := newFrameReader(bytes.NewReader(data), 64, 1<<16)
		for {
			typ, frame, body, err := fr.next()
			if err != nil {
				return
			}
			if len(frame) != len(body)+5 || frame[0] != typ {
				t.Fatalf("frame %d bytes, body %d", len(frame), len(body))
			}
			if int(binary.BigEndian.Uint32(frame[1:])) != len(body)+4 {
				t.Fatal("frame length field disagrees with body")
			}
			_, _ = decodeClient(typ, body)
			if typ == 'B' {
				var want pgproto3.Bind
				werr := want.Decode(body)
				got, ok := parseBind(body)
				if werr == nil {
					if !ok {
						t.Fatalf("pgproto3 accepts a Bind the hand parser refuses: %x", body)
					}
					if string(got.portal) != want.DestinationPortal || string(got.stmt) != want.PreparedStatement {
						t.Fatalf("names differ: %q/%q vs %q/%q", got.portal, got.stmt, want.DestinationPortal, want.PreparedStatement)
					}
					if got.nfmt != len(want.ResultFormatCodes) {
						t.Fatalf("result formats %d vs %d", got.nfmt, len(want.ResultFormatCodes))
					}
					if got.nfmt > 1 {
						for i, f := range got.formats() {
							if f != want.ResultFormatCodes[i] {
								t.Fatal("result format differs")
							}
						}
					}
				}
			}
		}
	})
}

// FuzzStartup checks the startup packet path: decode, parameter rules and
// the options parser never panic, and refusals are Postgres errors.
func FuzzStartup(f *testing.F) {
	f.Add([]byte("user\x00dev\x00database\x00main\x00\x00"))
	f.Add([]byte("user\x00dev\x00options\x00-c search_path=x --statement-timeout=5\x00\x00"))
	f.Add([]byte("user\x00dev\x00options\x00-c role=postgres\x00\x00"))
	f.Add([]byte("user\x00dev\x00replication\x00true\x00\x00"))
	f.Add([]byte("_pq_.x\x00y\x00user\x00u\x00\x00"))
	f.Fuzz(func(t *testing.T, params []byte) {
		pkt := append([]byte{0, 3, 0, 0}, params...)
		var sm pgproto3.StartupMessage
		if sm.Decode(pkt) != nil {
			return
		}
		st, err := parseStartup(&sm)
		if err != nil {
			var pe *pgError
			if !errors.As(err, &pe) || pe.Code == "" {
				t.Fatalf("refusal is not a Postgres error: %v", err)
			}
			return
		}
		if st.user == "" || st.database == "" {
			t.Fatal("accepted a startup without user or database")
		}
		for k := range st.params {
			if k == "role" || k == "session_authorization" {
				t.Fatalf("let %s through", k)
			}
		}
	})
}
