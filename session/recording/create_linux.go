package recording

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// createFile creates a session's recording file; O_EXCL: a reused session
// id must never overwrite earlier evidence.
//
// Opened with open(2) rather than by os.OpenFile: OpenFile offers every new
// file to the network poller (two fcntl calls and an epoll_ctl, which fails
// for a regular file), some 9 µs of a short session's CPU under pgbench -C;
// a recording is only ever written with blocking writes.
func createFile(path string) (file, error) {
	for {
		fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return &fdFile{fd: fd, name: path}, nil
	}
}

// fdFile is a recording file as its bare descriptor. Hand-written rather
// than wrapped by os.NewFile: NewFile asks the kernel whether the
// descriptor blocks (an fcntl) and registers a cleanup with the runtime,
// both per session, for what a recorder gets from four system calls. The
// recorder serialises its use (one write at a time, Close after the last),
// which an os.File would otherwise guard; nothing closes it behind the
// recorder's back, so a closed descriptor's number is never written to.
type fdFile struct {
	fd   int
	name string
}

// Write writes all of p, as os.File does.
func (f *fdFile) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := unix.Write(f.fd, p[done:])
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return done, f.pathError("write", err)
		case n == 0:
			return done, f.pathError("write", io.ErrShortWrite)
		}
		done += n
	}
	return done, nil
}

// Sync commits the file's data and metadata to disk (fsync).
func (f *fdFile) Sync() error {
	for {
		err := unix.Fsync(f.fd)
		if err != unix.EINTR {
			return f.pathError("sync", err)
		}
	}
}

// Close closes the descriptor; a second Close fails with os.ErrClosed.
func (f *fdFile) Close() error {
	if f.fd < 0 {
		return f.pathError("close", os.ErrClosed)
	}
	err := unix.Close(f.fd)
	f.fd = -1
	return f.pathError("close", err)
}

// Fd returns the descriptor, for fallocate, ftruncate and syncfs.
func (f *fdFile) Fd() uintptr { return uintptr(f.fd) }

// Name returns the path the file was created at.
func (f *fdFile) Name() string { return f.name }

func (f *fdFile) pathError(op string, err error) error {
	if err == nil {
		return nil
	}
	return &os.PathError{Op: op, Path: f.name, Err: err}
}
