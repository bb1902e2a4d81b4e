package mysql

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/session"
)

// reads classifies every command as a read.
type reads struct{}

func (reads) Classify(cmd *protocols.Command) *protocols.Classification {
	return &protocols.Classification{Redacted: cmd.Text}
}

type rowsSink struct{ rows []string }

func (s *rowsSink) ForwardRow(values [][]byte, _ bool) error {
	var parts []string
	for _, v := range values {
		if v == nil {
			parts = append(parts, "NULL")
		} else {
			parts = append(parts, string(v))
		}
	}
	s.rows = append(s.rows, strings.Join(parts, "|"))
	return nil
}

// TestExecutor runs a frontend's commands on the local MariaDB through the
// session flow: rows as text, masked; an upstream error is returned masked.
func TestExecutor(t *testing.T) {
	testenv.Need(t, "MariaDB", testenv.MariaDBAddr)
	conn := &protocols.Connection{Name: "m", Protocol: protocols.MySQL, Allow: protocols.Principals{"*"},
		Upstream: &Upstream{Address: testenv.MariaDBAddr, Database: "test", User: "root", TLS: UpstreamTLS{Mode: "prefer"}},
		Masking:  maskAll{}}
	g, err := session.New(session.Options{Auth: anyone{}, Classifier: reads{}, Connections: map[string]*protocols.Connection{"m": conn}})
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
	defer flow.Close("done")
	e := New()
	r, err := e.Dial(context.Background(), flow)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sink := &rowsSink{}
	cmd := &protocols.Command{Protocol: protocols.MySQL, Text: "SELECT 'a@b.c', 'x'; SELECT 1, 2", Kind: "query"}
	if _, err := flow.Execute(context.Background(), r, cmd, sink); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sink.rows, ";"); got != "NULL|x-masked;NULL|2-masked" {
		t.Fatalf("rows %q", got)
	}
	cmd.Text = "SELECT * FROM airlock_no_such_table"
	_, err = flow.Execute(context.Background(), r, cmd, sink)
	var ue *UpstreamError
	if !errors.As(err, &ue) || ue.Code != 1146 || !strings.Contains(ue.Message, "AIRLOCK_NO_SUCH_TABLE") {
		t.Fatalf("upstream error: %v", err)
	}
}
