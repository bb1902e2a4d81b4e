package approvals

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func runTestCLI(f *apiFixture, token string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	env := map[string]string{"AIRLOCK_TOKEN": token, "AIRLOCK_SERVER": f.srv.URL}
	code := RunCLI(args, &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

func TestCLI(t *testing.T) {
	f := newAPIFixture(t)
	ctx := context.Background()
	id := f.request(t, alice, "prod", "DROP TABLE users")
	evil := f.request(t, alice, "prod", "SELECT 1; \x1b]0;pwned\x07\x1b[2J DROP \u202eTABLE")
	other := f.request(t, alice, "two", "DROP TABLE two")

	t.Run("list", func(t *testing.T) {
		code, out, errs := runTestCLI(f, "tok-bob", "list")
		if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "DROP TABLE users") || !strings.HasPrefix(out, "ID") {
			t.Fatalf("%d\n%s\n%s", code, out, errs)
		}
		if strings.ContainsAny(out, "\x1b\x07\u202e") {
			t.Fatalf("list printed raw control characters: %q", out)
		}
	})

	t.Run("list json", func(t *testing.T) {
		code, out, _ := runTestCLI(f, "tok-bob", "list", "--json", "--status", "pending")
		var l listResponse
		if code != 0 || json.Unmarshal([]byte(out), &l) != nil || len(l.Approvals) != 3 {
			t.Fatalf("%d %s", code, out)
		}
	})

	t.Run("show escapes the command", func(t *testing.T) {
		code, out, _ := runTestCLI(f, "tok-bob", "show", evil)
		if code != 0 || strings.ContainsAny(out, "\x1b\x07\u202e") || !strings.Contains(out, `\u{001B}`) ||
			!strings.Contains(out, `\u{202E}`) || !strings.Contains(out, "Warning") {
			t.Fatalf("%d %q", code, out)
		}
	})

	t.Run("show unknown", func(t *testing.T) {
		code, _, errs := runTestCLI(f, "tok-bob", "show", newID())
		if code != 1 || !strings.Contains(errs, "not found (HTTP 404)") {
			t.Fatalf("%d %s", code, errs)
		}
	})

	t.Run("approve by non-reviewer", func(t *testing.T) {
		code, _, errs := runTestCLI(f, "tok-eve", "approve", id)
		if code != 1 || !strings.Contains(errs, "HTTP 403") {
			t.Fatalf("%d %s", code, errs)
		}
	})

	t.Run("approve with flags after the id", func(t *testing.T) {
		code, out, errs := runTestCLI(f, "tok-bob", "approve", id, "--reason", "planned maintenance")
		if code != 0 || !strings.Contains(out, "approved request "+id) {
			t.Fatalf("%d %s %s", code, out, errs)
		}
		r, _ := f.s.store.Get(ctx, id)
		if r.Status != StatusApproved || r.Decisions[0].Reason != "planned maintenance" || r.Decisions[0].Reviewer != "bob" {
			t.Fatalf("%+v", r)
		}
	})

	t.Run("approve twice", func(t *testing.T) {
		code, _, errs := runTestCLI(f, "tok-carol", "approve", id)
		if code != 1 || !strings.Contains(errs, "already approved (HTTP 409)") {
			t.Fatalf("%d %s", code, errs)
		}
	})

	t.Run("partial approval", func(t *testing.T) {
		code, out, _ := runTestCLI(f, "tok-bob", "--json", "approve", other)
		var r Request
		if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r.Status != StatusPending {
			t.Fatalf("%d %s", code, out)
		}
		code, out, _ = runTestCLI(f, "tok-carol", "approve", other)
		if code != 0 || !strings.Contains(out, "approved request") {
			t.Fatalf("%d %s", code, out)
		}
	})

	t.Run("deny", func(t *testing.T) {
		code, out, errs := runTestCLI(f, "tok-carol", "deny", evil, "--reason", "obfuscated")
		if code != 0 || !strings.Contains(out, "denied request "+evil) {
			t.Fatalf("%d %s %s", code, out, errs)
		}
		code, out, _ = runTestCLI(f, "tok-bob", "list", "--status", "denied")
		if code != 0 || !strings.Contains(out, evil) {
			t.Fatalf("%d %s", code, out)
		}
	})

	for _, tc := range []struct {
		name  string
		token string
		args  []string
		code  int
		says  string
	}{
		{"no command", "tok-bob", nil, 2, "no command"},
		{"unknown command", "tok-bob", []string{"bless", id}, 2, "unknown command"},
		{"deny without reason", "tok-bob", []string{"deny", id}, 2, "deny needs --reason"},
		{"show without id", "tok-bob", []string{"show"}, 2, "exactly one request id"},
		{"two ids", "tok-bob", []string{"approve", id, id}, 2, "exactly one request id"},
		{"unknown flag", "tok-bob", []string{"list", "--colour"}, 2, "colour"},
		{"no token", "", []string{"list"}, 2, "AIRLOCK_TOKEN is not set"},
		{"bad token", "wrong", []string{"list"}, 1, "HTTP 401"},
		{"plain http off loopback", "tok-bob", []string{"list", "--server", "http://airlock.example:19090"}, 2, "plain http"},
		{"credentials in server", "tok-bob", []string{"list", "--server", "https://u:p@airlock.example"}, 2, "credentials"},
		{"unreachable", "tok-bob", []string{"list", "--server", "http://127.0.0.1:1"}, 1, "reach 127.0.0.1:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := runTestCLI(f, tc.token, tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.says) {
				t.Fatalf("exit %d, want %d; stderr %s", code, tc.code, errs)
			}
			if tc.token != "" && strings.Contains(errs, tc.token) {
				t.Fatal("the token reached the output")
			}
		})
	}

	t.Run("help", func(t *testing.T) {
		code, out, _ := runTestCLI(f, "", "--help")
		if code != 0 || !strings.Contains(out, "usage: airlock approvals") {
			t.Fatalf("%d %s", code, out)
		}
	})
}
