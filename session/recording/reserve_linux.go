package recording

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// reserveSpace allocates n bytes of f from off without changing its size.
func reserveSpace(f file, off, n int64) error {
	fd, ok := f.(interface{ Fd() uintptr })
	if !ok {
		return errReserveUnsupported
	}
	for {
		err := unix.Fallocate(int(fd.Fd()), unix.FALLOC_FL_KEEP_SIZE, off, n)
		switch {
		case err == unix.EINTR:
			continue
		case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOSYS):
			return errReserveUnsupported
		case err != nil:
			return &os.PathError{Op: "fallocate", Path: fileName(f), Err: err}
		}
		return nil
	}
}

// unreserveSpace gives back the n bytes reserved past off, the file's end,
// by truncating the file to off: truncation frees the blocks past the end
// on every file system, where punching a hole there does nothing on ext4
// (it stops at the file's size) and left each recording its whole
// reservation.
func unreserveSpace(f file, off, n int64) error {
	fd, ok := f.(interface{ Fd() uintptr })
	if !ok {
		return nil
	}
	for {
		err := unix.Ftruncate(int(fd.Fd()), off)
		if err != unix.EINTR {
			return err
		}
	}
}

func fileName(f file) string {
	if n, ok := f.(interface{ Name() string }); ok {
		return n.Name()
	}
	return ""
}
