//go:build !linux

package recording

import "errors"

// syncFileSystem is not available here: batches sync file by file.
func syncFileSystem(file) error { return errors.New("syncfs: not available on this system") }
