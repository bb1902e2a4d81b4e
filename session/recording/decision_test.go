package recording

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

func TestDecisionTrailingFields(t *testing.T) {
	est, exact := int64(1000), int64(250)
	full := protocols.Decision{Action: protocols.Allow, Risk: protocols.RiskHigh, Rules: []string{"write.unbounded"},
		Reason: "r", ApprovalID: "a1", Reviewer: "bob", Grant: "grant1", PolicyAction: protocols.Review,
		Preview: &protocols.Preview{Status: protocols.PreviewOK, Elapsed: 3 * time.Millisecond, Effects: []protocols.PreviewEffect{
			{Statement: 1, Kind: "delete", Object: "public.t", EstimatedRows: &est, ExactRows: &exact}}}}
	audit := protocols.Decision{Action: protocols.Allow, Risk: protocols.RiskHigh, PolicyAction: protocols.Review, Audit: true}
	plain := protocols.Decision{Action: protocols.Deny, Risk: protocols.RiskCritical, Rules: []string{"reach.file"}, Reason: "no"}
	for _, d := range []protocols.Decision{full, audit, plain} {
		got, err := decodeDecision(appendDecision(nil, &d, maxText))
		if err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(d)
		b, _ := json.Marshal(got)
		if !bytes.Equal(a, b) {
			t.Errorf("round trip:\n got %s\nwant %s", b, a)
		}
	}
	// A decision without the new fields is stored as before them, so
	// earlier readers and files agree byte for byte.
	old := appendStr(nil, "deny", maxText)
	old = append(old, 4, 1)
	old = appendStr(old, "reach.file", maxText)
	for _, s := range []string{"no", "", ""} {
		old = appendStr(old, s, maxText)
	}
	if enc := appendDecision(nil, &plain, maxText); !bytes.Equal(enc, old) {
		t.Errorf("a plain decision's payload changed: %x, want %x", enc, old)
	}
	// A preview too large for the limit keeps its status, as valid JSON.
	big := full
	big.Preview = &protocols.Preview{Status: protocols.PreviewOK, Effects: []protocols.PreviewEffect{{Kind: "drop", Dependents: []string{strings.Repeat("v", 4000)}}}}
	got, err := decodeDecision(appendDecision(nil, &big, 1024))
	if err != nil || got.Preview == nil || got.Preview.Status != protocols.PreviewOK || !strings.Contains(got.Preview.Note, "too large") {
		t.Fatalf("large preview: %+v, %v", got, err)
	}
}
