package recording

import (
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
)

// reservations counts a factory's calls to reserve and unreserve space,
// passing them on to the file system.
type reservations struct {
	mu                 sync.Mutex
	reserves, releases [][2]int64 // offset, length
}

func countReservations(f *Factory) *reservations {
	c := &reservations{}
	f.reserve = func(out file, off, n int64) error {
		c.mu.Lock()
		c.reserves = append(c.reserves, [2]int64{off, n})
		c.mu.Unlock()
		return reserveSpace(out, off, n)
	}
	f.unreserve = func(out file, off, n int64) error {
		c.mu.Lock()
		c.releases = append(c.releases, [2]int64{off, n})
		c.mu.Unlock()
		return unreserveSpace(out, off, n)
	}
	return c
}

// recordQuery records one command, its decision and its result, as a
// client that connects per transaction does.
func recordQuery(t *testing.T, rec protocols.Recorder) {
	t.Helper()
	cmd := &protocols.Command{Kind: "query", Text: "SELECT abalance FROM pgbench_accounts WHERE aid = 1"}
	must(t, rec.Command(cmd, cmd.Text))
	must(t, rec.Decision(protocols.Decision{Action: protocols.Allow}))
	must(t, rec.Columns([]protocols.Column{{Name: "abalance", Type: protocols.TypeText}}))
	must(t, rec.Row([][]byte{[]byte("0")}))
	must(t, rec.Result(protocols.Result{Tag: "SELECT 1", Rows: 1}))
}

// TestShortSessionReservesOnePage: a session of one command reserves one
// page at its open, needs no more, and has nothing to give back at its
// close; its recording verifies.
func TestShortSessionReservesOnePage(t *testing.T) {
	f := newFactory(t, Config{Rows: RowsAll}, Options{Key: testKey})
	c := countReservations(f)
	rec := open(t, f, "short")
	recordQuery(t, rec)
	must(t, rec.Close("client terminated"))
	if len(c.reserves) != 1 || c.reserves[0] != [2]int64{0, pageSize} {
		t.Errorf("reservations = %v, want one of a page from 0", c.reserves)
	}
	if len(c.releases) != 0 {
		t.Errorf("gave back %v, want nothing: the reservation ends in the file's last page", c.releases)
	}
	path, _ := f.Path("short")
	if rep, err := VerifyFile(path, testKey); err != nil || !rep.OK() {
		t.Fatalf("verify: %v, %v", rep, err)
	}
	checkHeld(t, path)
}

// checkHeld fails when the file at path holds more space on disk than the
// pages its bytes need.
func checkHeld(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	must(t, err)
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return
	}
	if held, want := sys.Blocks*512, (st.Size()+pageSize-1)/pageSize*pageSize; held > want {
		t.Errorf("file of %d bytes holds %d bytes on disk, want at most %d", st.Size(), held, want)
	}
}

// TestLongSessionGivesBackSpace: a session that outgrew its first page
// gives back, at its close, the space reserved past its end, and the file
// then holds no more than the pages its bytes need (on the test's file
// system: ext4 kept the blocks when the space was given back by punching
// a hole past the end).
func TestLongSessionGivesBackSpace(t *testing.T) {
	f := newFactory(t, Config{Rows: RowsAll}, Options{Key: testKey})
	c := countReservations(f)
	rec := open(t, f, "long")
	recordQuery(t, rec)
	for i := 0; i < 20; i++ {
		must(t, rec.Row([][]byte{[]byte(strings.Repeat("y", 500))}))
	}
	must(t, rec.Close("client terminated"))
	if len(c.reserves) < 2 {
		t.Fatalf("reservations = %v, want the first page and more", c.reserves)
	}
	path, _ := f.Path("long")
	st, err := os.Stat(path)
	must(t, err)
	if len(c.releases) != 1 || c.releases[0][0] != st.Size() {
		t.Fatalf("gave back %v, want the space from the end (%d)", c.releases, st.Size())
	}
	checkHeld(t, path)
}

// TestEndReasonCut: an end reason longer than the tail reserved for it is
// recorded cut to maxEndReason, and the recording verifies.
func TestEndReasonCut(t *testing.T) {
	f := newFactory(t, Config{}, Options{Key: testKey})
	rec := open(t, f, "long-reason")
	reason := strings.Repeat("é", maxEndReason) // two bytes each
	must(t, rec.Close(reason))
	path, _ := f.Path("long-reason")
	in, err := os.Open(path)
	must(t, err)
	defer in.Close()
	rd, err := NewReader(in, testKey)
	must(t, err)
	var end string
	for {
		fr, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		must(t, err)
		if fr.Type == FrameEnd {
			end = fr.End
		}
	}
	if want := reason[:maxEndReason]; end != want {
		t.Errorf("end reason of %d bytes, want the first %d", len(end), len(want))
	}
}
