package recording

import (
	"os"
	"path/filepath"
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
	fd := int(fh.(*os.File).Fd())
	if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("FD flags %#x, %v: want FD_CLOEXEC", flags, err)
	}
	if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err != nil || flags&unix.O_NONBLOCK != 0 || flags&unix.O_ACCMODE != unix.O_WRONLY {
		t.Errorf("status flags %#x, %v: want blocking and write-only", flags, err)
	}
}
