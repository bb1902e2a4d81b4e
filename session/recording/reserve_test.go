package recording

import (
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airlock-gw/airlock/protocols"
)

// TestFullDiskRefusesUnreservedFrames: once no more space can be
// reserved, the next frame (a command) is refused before anything could
// forward it, what was recorded before is written, and Close completes a
// recording that verifies.
func TestFullDiskRefusesUnreservedFrames(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	f := newFactory(t, Config{Rows: RowsAll, BlockSize: MinBlockSize}, Options{Metrics: m, Key: testKey})
	var mu sync.Mutex
	limit := int64(-1) // reservations past limit fail; -1: none do
	f.reserve = func(out file, off, n int64) error {
		mu.Lock()
		defer mu.Unlock()
		if limit >= 0 && off+n > limit {
			return syscall.ENOSPC
		}
		return reserveSpace(out, off, n)
	}
	rec := open(t, f, "full-later")
	cmd := &protocols.Command{Kind: "query", Text: "SELECT 1"}
	must(t, rec.Command(cmd, cmd.Text))
	must(t, rec.Decision(protocols.Decision{Action: protocols.Allow}))
	r := rec.(*recorder)
	mu.Lock()
	limit = r.reserved // the disk is full from here on
	mu.Unlock()

	// Rows fill the space reserved; the row that needs more is refused.
	must(t, rec.Columns([]protocols.Column{{Name: "v", Type: protocols.TypeText}}))
	row := [][]byte{[]byte(strings.Repeat("x", 1000))}
	var err error
	rows := 0
	for ; rows < 10000 && err == nil; rows++ {
		err = rec.Row(row)
	}
	if !errors.Is(err, ErrRecordingFailed) || rows < 2 {
		t.Fatalf("after %d rows: %v; want the row past the reservation refused", rows, err)
	}
	if err := rec.Command(&protocols.Command{Kind: "query", Text: "DELETE FROM t"}, "DELETE FROM t"); !errors.Is(err, ErrRecordingFailed) {
		t.Fatalf("a command after the disk filled: %v", err)
	}
	if got := value(t, m.WriteErrors.WithLabelValues("disk_full")); got != 1 {
		t.Errorf("write errors{disk_full} = %v, want 1", got)
	}
	must(t, rec.Close("client disconnected"))
	path, _ := f.Path("full-later")
	rep, err := VerifyFile(path, testKey)
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v, %v", rep, err)
	}
	// The command, the decision, the columns, the rows that had space,
	// the end and the trailer.
	if want := int64(3 + rows - 1 + 1); rep.Frames < want {
		t.Errorf("verified %d frames, want at least %d", rep.Frames, want)
	}
}

// TestFullDiskAtOpen: a session whose first space cannot be reserved is
// refused, and its file removed.
func TestFullDiskRefusesOpen(t *testing.T) {
	f := newFactory(t, Config{}, Options{})
	f.reserve = func(file, int64, int64) error { return syscall.ENOSPC }
	if _, err := f.Open(testInfo("no-room")); err == nil || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Open = %v, want ENOSPC", err)
	}
	path, _ := f.Path("no-room")
	if _, err := VerifyFile(path, nil); err == nil {
		t.Fatal("the refused session's file was left behind")
	}
	if err := f.Probe(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Probe = %v, want ENOSPC", err)
	}
}
