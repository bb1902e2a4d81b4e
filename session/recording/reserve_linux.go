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

// unreserveSpace gives back n bytes of f from off, past its end.
func unreserveSpace(f file, off, n int64) error {
	fd, ok := f.(interface{ Fd() uintptr })
	if !ok {
		return nil
	}
	return unix.Fallocate(int(fd.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
}

func fileName(f file) string {
	if n, ok := f.(interface{ Name() string }); ok {
		return n.Name()
	}
	return ""
}
