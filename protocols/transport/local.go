package transport

import "net"

// IsLocal reports whether a peer is on this machine (loopback or a Unix
// socket), where a secret may travel without TLS.
func IsLocal(a net.Addr) bool {
	switch v := a.(type) {
	case *net.TCPAddr:
		return v.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	return false
}
