package transport

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// countingWriter records each Write it receives and fails from the failAt'th.
type countingWriter struct {
	bytes.Buffer
	writes, failAt int
}

var errBroken = errors.New("broken pipe")

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	if w.failAt > 0 && w.writes >= w.failAt {
		return 0, errBroken
	}
	return w.Buffer.Write(p)
}

func TestWriter(t *testing.T) {
	tests := []struct {
		name       string
		writes     []string
		flush      bool
		failAt     int
		wantOut    string
		wantWrites int
		wantErr    error
		buffered   int
	}{
		{name: "buffers until Flush", writes: []string{"ab", "cd"}, wantOut: "", buffered: 4},
		{name: "one write per Flush", writes: []string{"ab", "cd"}, flush: true, wantOut: "abcd", wantWrites: 1},
		{name: "large write goes straight out", writes: []string{strings.Repeat("L", BufferSize+1)}, wantOut: strings.Repeat("L", BufferSize+1), wantWrites: 1},
		{name: "failure sticks", writes: []string{"ab"}, flush: true, failAt: 1, wantErr: errBroken, buffered: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := &countingWriter{failAt: tc.failAt}
			w := NewWriter(dst)
			defer w.Release()
			for _, s := range tc.writes {
				if _, err := w.Write([]byte(s)); err != nil {
					t.Fatal(err)
				}
			}
			var err error
			if tc.flush {
				err = w.Flush()
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("Flush: %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				if _, err := w.Write([]byte("more")); !errors.Is(err, tc.wantErr) {
					t.Errorf("Write after a failure: %v, want %v", err, tc.wantErr)
				}
			}
			if dst.String() != tc.wantOut || dst.writes != tc.wantWrites+min(tc.failAt, 1) {
				t.Errorf("wrote %q in %d writes, want %q in %d", dst.String(), dst.writes, tc.wantOut, tc.wantWrites)
			}
			if w.Buffered() != tc.buffered {
				t.Errorf("Buffered %d, want %d", w.Buffered(), tc.buffered)
			}
		})
	}
}

// TestWriterRecycled checks that a recycled Writer drops the previous
// session's unflushed bytes and its error.
func TestWriterRecycled(t *testing.T) {
	first := NewWriter(&countingWriter{failAt: 1})
	_, _ = first.Write([]byte("secret"))
	_ = first.Flush()
	first.Release()
	for range 4 {
		var dst bytes.Buffer
		w := NewWriter(&dst)
		defer w.Release()
		if w.Buffered() != 0 {
			t.Fatalf("a recycled writer holds %d bytes", w.Buffered())
		}
		if _, err := w.Write([]byte("mine")); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil || dst.String() != "mine" {
			t.Fatalf("wrote %q, %v", dst.String(), err)
		}
	}
}
