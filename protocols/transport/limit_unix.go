//go:build unix

package transport

import "syscall"

// openFileLimit returns RLIMIT_NOFILE's soft limit, or 1024 (the usual
// default) when it cannot be read.
func openFileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 1024
	}
	return rl.Cur
}
