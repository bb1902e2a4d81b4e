package agent

import (
	"encoding/json"
	"strings"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
)

// paramsClassifier classifies a statement sent with parameters by its text
// alone, as the same statement would be classified on the wire, and adds
// the parameters to the redacted text, masked: reviewers read the values
// an approval covers (its hash covers them, in the payload), and the
// recording keeps them as it keeps literals.
type paramsClassifier struct {
	next       protocols.Classifier
	connection func(name string) *protocols.Connection
}

// withParams wraps the gateway's classifier; nil stays nil (nothing is
// classified).
func (s *Server) withParams(c protocols.Classifier) protocols.Classifier {
	if c == nil {
		return nil
	}
	return &paramsClassifier{next: c, connection: func(name string) *protocols.Connection { return s.gateway.Connection(name) }}
}

// Classify implements protocols.Classifier.
func (p *paramsClassifier) Classify(cmd *protocols.Command) *protocols.Classification {
	cls := p.next.Classify(cmd)
	params, err := engine.CommandParams(cmd)
	if err != nil || len(params) == 0 {
		return cls
	}
	out := *cls
	out.Redacted = cls.Redacted + "\n-- params: " + p.shown(cmd, params)
	return &out
}

// shown renders params as a JSON array, each string (and number) masked
// by the connection's detectors as they apply to a caller who is exempt
// from nothing, whoever the caller: reviewers see what anyone may.
func (p *paramsClassifier) shown(cmd *protocols.Command, params []engine.Param) string {
	var args struct {
		Connection string `json:"connection"`
	}
	_ = json.Unmarshal(cmd.Payload.Arguments, &args)
	var m protocols.Masker
	if c := p.connection(args.Connection); c != nil && c.Masking != nil {
		m = c.Masking.For(protocols.Identity{})
	}
	if m != nil {
		params = append([]engine.Param(nil), params...)
		for i := range params {
			q := &params[i]
			if q.Kind != engine.ParamString && q.Kind != engine.ParamNumber {
				continue
			}
			if masked := m.Text([]byte(q.Text)); string(masked) != q.Text {
				q.Kind, q.Text = engine.ParamString, string(masked)
			}
		}
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(params)
	return strings.TrimSuffix(b.String(), "\n")
}
