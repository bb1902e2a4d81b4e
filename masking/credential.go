package masking

import (
	"bytes"
	"math"
)

// credClass is what a key name says about its value.
type credClass uint8

const (
	credNone     credClass = iota
	credPassword           // chosen by a person: short and low-entropy values count
	credSecret             // generated: only values that look random count
)

// credWords are the key fragments that mark a credential, lower case.
var credWords = [...]struct {
	word  string
	class credClass
}{
	{"password", credPassword}, {"passwd", credPassword}, {"passphrase", credPassword},
	{"passcode", credPassword}, {"pwd", credPassword},
	{"secret", credSecret}, {"token", credSecret}, {"api_key", credSecret}, {"apikey", credSecret},
	{"api-key", credSecret}, {"access_key", credSecret}, {"accesskey", credSecret},
	{"private_key", credSecret}, {"privatekey", credSecret}, {"credential", credSecret},
}

// credByFirst indexes credWords by their first byte.
var credByFirst = func() (t [256][]uint8) {
	for i, w := range credWords {
		t[w.word[0]] = append(t[w.word[0]], uint8(i))
	}
	return t
}()

// maxKey bounds the look-back over an assignment's key.
const maxKey = 64

// credKeyword classifies a key such as "DB_PASSWORD", "api_key" or
// "aws_secret_access_key"; aws reports an AWS secret key's name. It is one
// pass over the lower-cased key that tries the fragments starting with the
// byte at hand, since it runs for every JSON key and every "name:" in text.
func credKeyword(key []byte) (c credClass, aws bool) {
	if len(key) < 3 || len(key) > maxKey {
		return credNone, false
	}
	var low [maxKey]byte
	for i, ch := range key {
		if ch >= 'A' && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		low[i] = ch
	}
	k := low[:len(key)]
scan:
	for i, ch := range k {
		for _, w := range credByFirst[ch] {
			if hasPrefix(k[i:], credWords[w].word) {
				c = credWords[w].class
				break scan
			}
		}
	}
	if c == credNone {
		return credNone, false
	}
	aws = bytes.Contains(k, []byte("aws")) || bytes.Contains(k, []byte("secret_access")) || bytes.Contains(k, []byte("secretaccess"))
	if string(k) == "pwd" || string(k) == "oldpwd" {
		c = credShellPWD
	}
	return c, aws
}

// credShellPWD is a "pwd" key: a password in ODBC strings, the working
// directory in shell environments, told apart by the value.
const credShellPWD credClass = 3

// credValue reports whether an assignment's value is worth masking: not a
// placeholder, and with the entropy its class needs. Passwords need little
// (1.5 bits per character excludes "aaaa" and "****"); generated secrets
// need the entropy of a random string of their length (at most 3 bits per
// character), which keeps "token: undefined" and "secret: true" clear.
func credValue(v []byte, c credClass) bool {
	if len(v) == 0 || placeholder(v) {
		return false
	}
	switch c {
	case credPassword:
		return len(v) >= 3 && entropy(v) >= 1.5
	case credShellPWD:
		return len(v) >= 3 && v[0] != '/' && v[0] != '~' && entropy(v) >= 1.5
	case credSecret:
		return len(v) >= 8 && entropy(v) >= min(3, 0.8*math.Log2(float64(len(v))))
	}
	return false
}

var placeholderWords = [...]string{
	"null", "none", "nil", "true", "false", "undefined", "required", "optional", "empty",
	"redacted", "masked", "hidden", "string", "text", "varchar", "yes", "no", "default",
}

// placeholder reports values that stand for a credential without being one:
// bind parameters ($1, ?, :name, @p1), templates (${X}, {{x}}, <x>, %s),
// words such as null, and runs of one character (****, xxxx).
func placeholder(v []byte) bool {
	switch v[0] {
	case '?', ':', '@', '<', '%', '[':
		return true
	case '$':
		return len(v) == 1 || v[1] == '{' || isDigit(v[1])
	case '{':
		return len(v) > 1 && v[1] == '{'
	}
	same := true
	for _, c := range v[1:] {
		if c != v[0] {
			same = false
			break
		}
	}
	if same {
		return true
	}
	if len(v) > 10 {
		return false
	}
	for _, w := range placeholderWords {
		if equalFold(v, w) {
			return true
		}
	}
	return false
}

// entropy is the Shannon entropy of the first 256 bytes of v, in bits per
// byte.
func entropy(v []byte) float64 {
	if len(v) > 256 {
		v = v[:256]
	}
	var cnt [256]uint16
	for _, c := range v {
		cnt[c]++
	}
	n := float64(len(v))
	h := 0.0
	for _, c := range cnt {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

// assign handles '=' and ':'. For ':' it first tries an IPv6 address
// starting with "::". Then it looks back over optional spaces, a closing
// quote (perhaps escaped) and a key; a key naming a credential makes the
// value (quoted, escaped-quoted or bare) a span when credValue agrees. A
// "scheme://user:" key is a URL's userinfo and the password runs to '@'.
func (s *scanner) assign(b []byte, i int) int {
	n := len(b)
	on := &s.d.on
	if b[i] == ':' && on[entIP] && i+1 < n && b[i+1] == ':' && (s.boundary(b, i) && (i == s.last || b[i-1] != ':')) {
		if e := s.ipv6(b, i); e > 0 {
			return e
		}
	}
	if s.inValue || (!on[entCredential] && !on[entAWSSecret]) {
		return i + 1
	}
	k := i
	for k > s.last && i-k < 4 && (b[k-1] == ' ' || b[k-1] == '\t') {
		k--
	}
	if k > s.last && (b[k-1] == '"' || b[k-1] == '\'') {
		k--
		if k > s.last && b[k-1] == '\\' {
			k--
		}
	}
	ke := k
	for k > s.last && ke-k < maxKey && class[b[k-1]]&cIdent != 0 {
		k--
	}
	if b[i] == ':' && ke == i && k >= 2 && b[k-1] == '/' && b[k-2] == '/' {
		return s.userinfo(b, i)
	}
	if k == ke {
		return i + 1
	}
	if isDigit(b[k]) {
		return i + 1 // numbers and times: 10:23:45
	}
	cc, aws := credKeyword(b[k:ke])
	if cc == credNone {
		return i + 1
	}
	v := i + 1
	if v < n && ((b[i] == ':' && b[v] == '=') || (b[i] == '=' && b[v] == '>')) {
		v++ // := and =>
	}
	for v < n && v-i < 8 && (b[v] == ' ' || b[v] == '\t') {
		v++
	}
	var q byte
	esc := false
	if v < n && (b[v] == '"' || b[v] == '\'' || b[v] == '`') {
		q = b[v]
		v++
	} else if v+1 < n && b[v] == '\\' && (b[v+1] == '"' || b[v+1] == '\'') {
		q, esc = b[v+1], true
		v += 2
	}
	ve := v
	switch {
	case esc:
		for ve < n && b[ve] != '\\' && b[ve] != '\n' {
			ve++
		}
	case q != 0:
		for ve < n && b[ve] != q && b[ve] != '\n' {
			if b[ve] == '\\' && ve+1 < n && b[ve+1] != '\n' {
				ve++
			}
			ve++
		}
	default:
		for ve < n && !valueStop(b[ve]) {
			ve++
		}
	}
	ve = min(ve, n)
	// A value that holds a more specific entity (a JWT, a GitHub token, an
	// email) is reported as that. The sub-scan runs once over the value
	// and scanning resumes after it, accepted or not, so a long run of
	// "password=password=…" stays linear.
	mark, last := len(s.spans), s.last
	s.last, s.inValue = v, true // the value is scanned as a text of its own
	s.loop(b[:ve], v)
	s.inValue = false
	found := len(s.spans) > mark
	if found && covers(s.spans[mark:], v, ve) {
		return max(ve, s.last)
	}
	ent, whole := credEntity(on, b[v:ve], cc, aws, found)
	if !whole {
		if !found {
			s.last = last
		}
		return max(ve, s.last, i+1)
	}
	s.spans, s.last = s.spans[:mark], v
	s.emit(v, ve, ent)
	return ve
}

// credEntity decides whether a credential-keyed value is masked whole, and
// as what. A value is masked whole when credValue accepts it, or when it
// holds entities that leave part of it clear (partial: the rest of a
// credential is a credential too, whatever its entropy); a value made
// only of entities keeps their more specific labels.
func credEntity(on *[numEntities]bool, val []byte, cc credClass, aws, partial bool) (entity, bool) {
	if aws && on[entAWSSecret] && len(val) == 40 && allClass(val, cB64) {
		return entAWSSecret, true
	}
	if !on[entCredential] {
		return 0, false
	}
	return entCredential, partial || credValue(val, cc)
}

// covers reports whether spans cover [from, to) without gaps.
func covers(spans []span, from, to int) bool {
	for _, sp := range spans {
		if sp.start != from {
			return false
		}
		from = sp.end
	}
	return from == to
}

// valueStop ends a bare (unquoted) assignment value.
func valueStop(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', ',', ';', '&', '"', '\'', '`', '<', '>', ')', '}', ']', '\\':
		return true
	}
	return c < 0x20
}

// userinfo masks the password of "scheme://user:password@host".
func (s *scanner) userinfo(b []byte, i int) int {
	v := i + 1
	k := v
	for k < len(b) && k-v < 256 && b[k] != '@' {
		if valueStop(b[k]) || b[k] == '/' || b[k] == '?' || b[k] == '#' {
			return i + 1
		}
		k++
	}
	if k == v || k >= len(b) || b[k] != '@' || (b[v] == '[' && placeholder(b[v:k])) {
		return i + 1
	}
	s.emit(v, k, entCredential)
	return k
}
