package recording

import (
	"errors"

	"golang.org/x/sys/unix"
)

// syncFileSystem flushes the file system that holds f with syncfs(2): every
// file's data and metadata, then one cache flush of the device.
func syncFileSystem(f file) error {
	fd, ok := f.(interface{ Fd() uintptr })
	if !ok {
		return errors.New("syncfs: not an operating-system file")
	}
	return unix.Syncfs(int(fd.Fd()))
}
