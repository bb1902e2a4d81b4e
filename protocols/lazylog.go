package protocols

import (
	"context"
	"log/slog"
	"sync"
)

// LazyWith returns l with args added to every record, like l.With(args...),
// but formats args only when the first record is written. slog's With
// formats them at once (the JSON handler pre-encodes them), and a logger
// made for every connection, used only if something goes wrong, then cost
// some 20 µs of CPU per connection for nothing. Written by hand: slog has
// no deferred With.
func LazyWith(l *slog.Logger, args ...any) *slog.Logger {
	if len(args) == 0 {
		return l
	}
	return slog.New(&lazyHandler{parent: l.Handler(), args: args})
}

// lazyHandler is parent with args added, built at its first Handle.
type lazyHandler struct {
	parent slog.Handler
	args   []any
	once   sync.Once
	h      slog.Handler
}

func (l *lazyHandler) handler() slog.Handler {
	l.once.Do(func() { l.h = slog.New(l.parent).With(l.args...).Handler() })
	return l.h
}

func (l *lazyHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return l.parent.Enabled(ctx, level)
}

func (l *lazyHandler) Handle(ctx context.Context, r slog.Record) error {
	return l.handler().Handle(ctx, r)
}

func (l *lazyHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return l.handler().WithAttrs(attrs)
}

func (l *lazyHandler) WithGroup(name string) slog.Handler {
	return l.handler().WithGroup(name)
}
