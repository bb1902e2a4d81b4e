package postgres

import (
	"bytes"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// TestParameterStatuses: an upstream's parameters are shown to clients in
// name order, encoded once, and again after a change.
func TestParameterStatuses(t *testing.T) {
	up := &upstream{params: map[string]string{"TimeZone": "UTC", "DateStyle": "ISO, MDY", "application_name": "a"}}
	encode := func(kv ...string) []byte {
		var out []byte
		for i := 0; i < len(kv); i += 2 {
			out, _ = (&pgproto3.ParameterStatus{Name: kv[i], Value: kv[i+1]}).Encode(out)
		}
		return out
	}
	first := up.parameterStatuses()
	if want := encode("DateStyle", "ISO, MDY", "TimeZone", "UTC", "application_name", "a"); !bytes.Equal(first, want) {
		t.Fatalf("statuses %q, want %q", first, want)
	}
	if again := up.parameterStatuses(); &again[0] != &first[0] {
		t.Error("encoded again without a change")
	}
	up.params["application_name"] = "b"
	up.statuses = nil // as reset does when the server reports a change
	if got, want := up.parameterStatuses(), encode("DateStyle", "ISO, MDY", "TimeZone", "UTC", "application_name", "b"); !bytes.Equal(got, want) {
		t.Fatalf("after a change: %q, want %q", got, want)
	}
	empty := &upstream{params: map[string]string{}}
	if got := empty.parameterStatuses(); len(got) != 0 {
		t.Fatalf("no parameters: %q", got)
	}
}
