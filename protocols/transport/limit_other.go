//go:build !unix

package transport

// openFileLimit returns 1024 where the platform has no RLIMIT_NOFILE.
func openFileLimit() uint64 { return 1024 }
