//go:build !linux

package recording

func reserveSpace(file, int64, int64) error   { return errReserveUnsupported }
func unreserveSpace(file, int64, int64) error { return nil }
