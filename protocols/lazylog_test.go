package protocols

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestLazyWith checks that a lazily attributed logger writes exactly what
// slog's own With writes, at every level it enables and through further
// With and WithGroup calls, and nothing below its level.
func TestLazyWith(t *testing.T) {
	emit := func(l *slog.Logger) {
		l.Debug("hidden", "k", 0)
		l.Info("started", "tls", false)
		l.With("more", 2).Warn("again")
		l.WithGroup("g").Error("grouped", "x", "y")
	}
	var want, got bytes.Buffer
	opts := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}
	emit(slog.New(slog.NewJSONHandler(&want, opts)).With("session", "s1", "client", "127.0.0.1:1"))
	emit(LazyWith(slog.New(slog.NewJSONHandler(&got, opts)), "session", "s1", "client", "127.0.0.1:1"))
	if got.String() != want.String() {
		t.Fatalf("lazy logger wrote\n%s\nslog's With wrote\n%s", got.String(), want.String())
	}
	if n := strings.Count(got.String(), "\n"); n != 3 {
		t.Fatalf("wrote %d lines, want 3 (debug is disabled):\n%s", n, got.String())
	}
}

// TestLazyWithDefersFormatting checks that nothing is formatted until a
// record is written: a LogValuer is not asked for its value until then.
func TestLazyWithDefersFormatting(t *testing.T) {
	var buf bytes.Buffer
	l := LazyWith(slog.New(slog.NewJSONHandler(&buf, nil)), "v", countingValuer{})
	if valued != 0 {
		t.Fatalf("LogValue called %d times before any record", valued)
	}
	l.Info("now")
	if valued != 1 || !strings.Contains(buf.String(), `"v":"counted"`) {
		t.Fatalf("after one record: LogValue called %d times, output %s", valued, buf.String())
	}
}

var valued int

type countingValuer struct{}

func (countingValuer) LogValue() slog.Value { valued++; return slog.StringValue("counted") }
