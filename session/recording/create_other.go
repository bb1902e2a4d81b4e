//go:build !linux

package recording

import "os"

// createFile creates a session's recording file; O_EXCL: a reused session
// id must never overwrite earlier evidence.
func createFile(path string) (file, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
}
