package identity

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameLen is the longest identity name: Postgres keeps NAMEDATALEN-1 = 63
// bytes of a role name.
const MaxNameLen = 63

// maxGroupLen bounds one group name; identity providers' group paths can be
// long, but not unboundedly.
const maxGroupLen = 256

// ValidName reports why name cannot be an identity name, or nil. A name is 1
// to 63 bytes of ASCII letters, digits and . _ @ + - (enough for user names,
// e-mail addresses and subject UUIDs). Every client can send it as its user
// name, and it cannot be confused with the principals "*" and "group:NAME".
func ValidName(name string) error {
	if name == "" {
		return errors.New("empty name")
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("name is %d bytes long (at most %d)", len(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		if !nameByte(name[i]) {
			return fmt.Errorf("name %q has character %q (want letters, digits and . _ @ + -)", sanitize(name), rune(name[i]))
		}
	}
	return nil
}

func nameByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return c == '.' || c == '_' || c == '@' || c == '+' || c == '-'
}

// validGroup accepts any printable UTF-8 text without surrounding spaces:
// identity providers name groups freely ("/Team A" in Keycloak).
func validGroup(g string) error {
	switch {
	case g == "":
		return errors.New("empty group")
	case len(g) > maxGroupLen:
		return fmt.Errorf("group is %d bytes long (at most %d)", len(g), maxGroupLen)
	case !utf8.ValidString(g):
		return errors.New("group is not valid UTF-8")
	case strings.TrimSpace(g) != g:
		return fmt.Errorf("group %q has surrounding spaces", g)
	}
	for _, r := range g {
		if !unicode.IsPrint(r) && r != ' ' {
			return fmt.Errorf("group %q has a control character", sanitize(g))
		}
	}
	return nil
}

// sanitize makes s safe to quote in an error: non-printable bytes become
// '?', so that a stray control sequence cannot reach a terminal.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}

// checkURL accepts an https URL, or an http one whose host is loopback (tests
// and identity providers on the same machine).
func checkURL(raw string, allowQuery bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL: %v", err)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%q has no host", raw)
	}
	if u.User != nil {
		return fmt.Errorf("%q must not carry credentials", u.Redacted())
	}
	if u.Fragment != "" {
		return fmt.Errorf("%q must not have a fragment", raw)
	}
	if !allowQuery && (u.RawQuery != "" || u.ForceQuery) {
		return fmt.Errorf("%q must not have a query", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q must use https (http only for loopback hosts)", raw)
	}
	return fmt.Errorf("%q has scheme %q (want https)", raw, u.Scheme)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkClaimPath accepts a claim name or a dotted path without empty
// segments.
func checkClaimPath(p string) error {
	if strings.TrimSpace(p) != p {
		return fmt.Errorf("claim %q has surrounding spaces", p)
	}
	for _, seg := range strings.Split(p, ".") {
		if seg == "" {
			return fmt.Errorf("claim path %q has an empty segment", p)
		}
	}
	return nil
}
