package postgres

import (
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
)

// socketPrefix is the name PostgreSQL gives its Unix-domain socket in the
// socket directory: ".s.PGSQL." followed by the port.
const socketPrefix = ".s.PGSQL."

// SplitUpstreamAddress splits an upstream address into the host and port
// that libpq and pgconn take. A TCP address is host:port. An absolute path
// names PostgreSQL's Unix-domain socket, the way a gateway next to the
// database reaches it: either the socket directory (libpq's host, port
// 5432) or the socket file itself, whose name carries the port
// (/var/run/postgresql/.s.PGSQL.5433). The returned host is then the
// directory, which pgconn dials as a Unix socket.
func SplitUpstreamAddress(addr string) (host, port string, err error) {
	if strings.HasPrefix(addr, "/") {
		p := path.Clean(addr)
		dir, base := path.Split(p)
		if num, ok := strings.CutPrefix(base, socketPrefix); ok {
			if !validPort(num) {
				return "", "", fmt.Errorf("invalid port %q in socket name %q", num, base)
			}
			return path.Clean(dir), num, nil
		}
		return p, "5432", nil
	}
	host, port, err = net.SplitHostPort(addr)
	if err != nil {
		if !strings.Contains(addr, ":") {
			return "", "", fmt.Errorf("missing port in %q (write host:port, or the absolute path of the socket directory)", addr)
		}
		return "", "", fmt.Errorf("invalid address %q: %v", addr, err)
	}
	if host == "" {
		return "", "", fmt.Errorf("missing host in %q", addr)
	}
	if !validPort(port) {
		return "", "", fmt.Errorf("invalid port %q", port)
	}
	return host, port, nil
}

// IsUnixAddress reports whether an upstream address names a Unix socket.
func IsUnixAddress(addr string) bool { return strings.HasPrefix(addr, "/") }

func validPort(s string) bool {
	p, err := strconv.Atoi(s)
	return err == nil && p > 0 && p <= 65535 && strconv.Itoa(p) == s
}
