package masking

import (
	"bytes"
	"net/netip"
)

// maxLocal bounds the look-back from '@' over an email's local part
// (RFC 5321 allows 64 octets).
const maxLocal = 64

// email handles an '@': it looks back over the local part and forward over
// a domain of at least two labels whose last is a plausible TLD (two or more
// letters, punycode or non-ASCII). Non-ASCII bytes count as local-part and
// label bytes so internationalised addresses are masked too.
func (s *scanner) email(b []byte, i int) int {
	lo := max(i-maxLocal, s.last)
	j := i
	for j > lo && class[b[j-1]]&cLocal != 0 {
		j--
	}
	for j < i && b[j] == '.' {
		j++
	}
	if j == i {
		return i + 1
	}
	end := domainEnd(b, i+1)
	if end < 0 {
		return i + 1
	}
	s.emit(j, end, entEmail)
	return end
}

// domainEnd returns the end of the domain name starting at p, or -1.
func domainEnd(b []byte, p int) int {
	n := len(b)
	end, labels, tld := -1, 0, p
	for k := p; k < n && k-p < 254; {
		ls := k
		for k < n && class[b[k]]&cDomain != 0 {
			k++
		}
		if k == ls || b[ls] == '-' {
			break
		}
		labels++
		end, tld = k, ls
		if k+1 < n && b[k] == '.' {
			k++
			continue
		}
		break
	}
	if labels < 2 || !validTLD(b[tld:end]) {
		return -1
	}
	return end
}

func validTLD(t []byte) bool {
	if len(t) < 2 {
		return false
	}
	if hasPrefix(t, "xn--") {
		return true
	}
	for _, c := range t {
		if c >= 0x80 {
			return true
		}
	}
	return allClass(t, cAlpha)
}

// maxIPv6 is the longest textual IPv6 address (with an embedded IPv4).
const maxIPv6 = 45

// ipv6 matches an IPv6 address starting at i. A cheap shape check (two or
// more colons; "::" or eight groups or six and an IPv4 tail; at least
// three groups) rejects times (10:23:45), MAC addresses and "Foo::Bar"
// before netip.ParseAddr validates. Zones (%eth0) are left in place.
func (s *scanner) ipv6(b []byte, i int) int {
	n := len(b)
	k := i
	for k < n && (class[b[k]]&cHex != 0 || b[k] == ':' || b[k] == '.') {
		if k-i > maxIPv6 {
			return 0
		}
		k++
	}
	end := k
	for end > i && b[end-1] == '.' {
		end--
	}
	if end-i >= 2 && b[end-1] == ':' && b[end-2] != ':' {
		end--
	}
	if end < n && isWord(b[end]) {
		return 0
	}
	// The shape of what remains after trimming: a trailing '.' or ':'
	// must not count.
	colons, groups, glen := 0, 0, 0
	dbl, dot := false, false
	for p := i; p < end; p++ {
		switch c := b[p]; {
		case c == ':':
			if glen > 0 {
				groups++
			}
			if p > i && b[p-1] == ':' {
				if dbl {
					return 0
				}
				dbl = true
			}
			colons, glen = colons+1, 0
		case c == '.':
			dot, glen = true, 0
		default:
			if glen++; glen > 4 {
				return 0
			}
		}
	}
	if glen > 0 && !dot {
		groups++
	}
	if colons < 2 || (!dbl && colons != 7 && !(dot && colons == 6)) || (groups < 3 && !dot) {
		return 0
	}
	a, err := netip.ParseAddr(string(b[i:end]))
	if err != nil || !a.Is6() {
		return 0
	}
	s.emit(i, end, entIP)
	return end
}

// iban matches an IBAN at i: a country code with a registered length (in
// either case: stored IBANs are sometimes lower-cased), two check digits,
// and the BBAN, either compact or in groups of four joined by single
// spaces, passing the ISO 7064 mod 97-10 check.
func (s *scanner) iban(b []byte, i int) int {
	n := len(b)
	if i+4 > n || class[b[i]]&cAlpha == 0 || class[b[i+1]]&cAlpha == 0 || !isDigit(b[i+2]) || !isDigit(b[i+3]) {
		return 0
	}
	want := ibanLength(b[i]&^0x20, b[i+1]&^0x20) // upper case
	if want == 0 {
		return 0
	}
	var buf [maxIBAN]byte
	cnt, grp, k := 0, 0, i
	for k < n && cnt < want {
		c := b[k]
		if class[c]&cWord != 0 && c != '_' {
			if c >= 'a' {
				c -= 'a' - 'A'
			}
			buf[cnt] = c
			cnt++
			grp++
			k++
			continue
		}
		if c == ' ' && grp == 4 && k+1 < n && class[b[k+1]]&cWord != 0 {
			grp = 0
			k++
			continue
		}
		break
	}
	if cnt != want || (k < n && isWord(b[k])) || !ibanChecksum(buf[:want]) {
		return 0
	}
	s.emit(i, k, entIBAN)
	return k
}

// ibanChecksum moves the country code and check digits to the end, reads
// letters as 10..35 and checks that the number is 1 mod 97.
func ibanChecksum(s []byte) bool {
	r := 0
	add := func(c byte) {
		if c <= '9' {
			r = (r*10 + int(c-'0')) % 97
		} else {
			r = (r*100 + int(c-'A'+10)) % 97
		}
	}
	for _, c := range s[4:] {
		add(c)
	}
	for _, c := range s[:4] {
		add(c)
	}
	return r == 1
}

var (
	pemBegin = []byte("-----BEGIN ")
	pemEnd   = []byte("-----END ")
	pemDash  = []byte("-----")
	pemKey   = []byte("PRIVATE KEY")
)

// pem handles a '-': a "-----BEGIN … PRIVATE KEY…-----" header starts a
// private key block that is masked whole, through its matching END line,
// or to the end of the value when that line is missing (a truncated key is
// still a key). Headers are searched for with bytes.Index, so every END
// line is examined once.
func (s *scanner) pem(b []byte, i int) int {
	if !bytes.HasPrefix(b[i:], pemBegin) {
		return i + 1
	}
	ls := i + len(pemBegin)
	le := bytes.Index(b[ls:min(len(b), ls+80)], pemDash)
	if le < 0 {
		return ls
	}
	label := b[ls : ls+le]
	if !bytes.Contains(label, pemKey) {
		return ls
	}
	end := len(b)
	for k := ls + le + len(pemDash); ; {
		x := bytes.Index(b[k:], pemEnd)
		if x < 0 {
			break
		}
		y := k + x + len(pemEnd)
		if bytes.HasPrefix(b[y:], label) && bytes.HasPrefix(b[y+len(label):], pemDash) {
			end = y + len(label) + len(pemDash)
			break
		}
		k = y
	}
	s.emit(i, end, entPrivateKey)
	return end
}
