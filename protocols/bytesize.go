package protocols

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"
)

// ByteSize is a size in bytes, written in configuration as a plain number
// or with a unit: 64MiB, 10GB, "10 GiB", 1.5MB; a bare k, m or g is binary
// (512k is 512 KiB).
type ByteSize int64

// String formats the size with a binary unit.
func (s ByteSize) String() string {
	if s < 0 {
		return strconv.FormatInt(int64(s), 10) + " B"
	}
	return humanize.IBytes(uint64(s))
}

// UnmarshalText implements encoding.TextUnmarshaler (YAML and JSON decoders
// use it).
func (s *ByteSize) UnmarshalText(b []byte) error {
	v, err := ParseByteSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (s ByteSize) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// ParseByteSize parses a size as ByteSize reads it.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(strings.ToLower(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
		{"kb", 1000}, {"mb", 1000 * 1000}, {"gb", 1000 * 1000 * 1000}, {"tb", 1000 * 1000 * 1000 * 1000},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil && n >= 0 && n <= (1<<62)/mult {
		return ByteSize(n * mult), nil
	}
	// Fractions (1.5MB) as humanize reads them.
	if v, err := humanize.ParseBytes(s); err == nil && v <= 1<<62 && strings.ContainsRune(s, '.') {
		return ByteSize(v), nil
	}
	return 0, fmt.Errorf("invalid size %q (write e.g. 64MiB, 10GB or 1048576)", s)
}
