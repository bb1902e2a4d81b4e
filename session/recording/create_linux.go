package recording

import (
	"os"

	"golang.org/x/sys/unix"
)

// createFile creates a session's recording file; O_EXCL: a reused session
// id must never overwrite earlier evidence.
//
// Opened with open(2) and wrapped by os.NewFile rather than by os.OpenFile:
// OpenFile offers every new file to the network poller (two fcntl calls and
// an epoll_ctl, which fails for a regular file), some 9 µs of a short
// session's CPU under pgbench -C; NewFile leaves a blocking descriptor
// alone, and a recording is only ever written with blocking writes.
func createFile(path string) (file, error) {
	for {
		fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return os.NewFile(uintptr(fd), path), nil
	}
}
