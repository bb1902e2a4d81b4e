package recording

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCreateFileDescriptor checks the descriptor createFile opens by hand:
// closed on exec (a program the gateway starts must not inherit
// recordings) and blocking (it is never in the network poller).
func TestCreateFileDescriptor(t *testing.T) {
	fh, err := createFile(filepath.Join(t.TempDir(), "s.alrec"))
	must(t, err)
	defer fh.Close()
	fd := int(fh.(interface{ Fd() uintptr }).Fd())
	if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("FD flags %#x, %v: want FD_CLOEXEC", flags, err)
	}
	if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err != nil || flags&unix.O_NONBLOCK != 0 || flags&unix.O_ACCMODE != unix.O_WRONLY {
		t.Errorf("status flags %#x, %v: want blocking and write-only", flags, err)
	}
}

// TestFdFile: the bare descriptor writes, syncs and closes as an os.File
// does, and refuses use after Close with an error naming the file.
func TestFdFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.alrec")
	fh, err := createFile(path)
	must(t, err)
	data := []byte("\x89ALREC\r\n header")
	if n, err := fh.Write(data); n != len(data) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	must(t, fh.Sync())
	must(t, fh.Close())
	if got, err := os.ReadFile(path); err != nil || string(got) != string(data) {
		t.Fatalf("file holds %q, %v; want %q", got, err, data)
	}
	if err := fh.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close = %v, want os.ErrClosed", err)
	}
	if _, err := fh.Write(data); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Write after Close = %v, want an error naming the file", err)
	}
	if _, err := createFile(path); !errors.Is(err, os.ErrExist) {
		t.Errorf("creating it again = %v, want os.ErrExist", err)
	}
}
