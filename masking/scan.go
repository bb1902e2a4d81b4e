package masking

// The scanner is the detection fast path: one forward pass over a value's
// bytes. It is written by hand rather than with regular expressions because
// Go's RE2 engine runs one pass per pattern (twenty patterns, twenty passes)
// at tens of MB/s each and has no look-around for the word boundaries every
// detector needs, and because each detector's validator (Luhn, mod-97,
// octets, base64url+JSON, entropy) needs the structured token anyway.
//
// The pass skips ordinary words with a class table and examines only:
//   - word starts (a word is a run of [A-Za-z0-9_]): a digit starts the
//     digit-run detectors, a few letters start the token prefixes (AKIA,
//     eyJ, ghp_, xox, sk_live_, Bearer, …), an upper-case letter an IBAN, a
//     short hex word followed by ':' an IPv6 address;
//   - trigger bytes: '@' (email, looking back at most 64 bytes), '=' and
//     ':' (password=… assignments, looking back at most 64 bytes, and "::"),
//     '+' and '(' (phone numbers), '-' (PEM blocks).
// Every matcher reads a bounded window or consumes what it reads, and spans
// never overlap, so the work per input byte is bounded by a constant.

// Byte classes.
const (
	cWord   uint16 = 1 << iota // [A-Za-z0-9_]
	cDigit                     // [0-9]
	cAlpha                     // [A-Za-z]
	cUpper                     // [A-Z]
	cHex                       // [0-9A-Fa-f]
	cLocal                     // email local part: [A-Za-z0-9._%+-] and non-ASCII
	cDomain                    // domain label: [A-Za-z0-9-] and non-ASCII
	cB64                       // standard base64: [A-Za-z0-9+/]
	cB64URL                    // base64url: [A-Za-z0-9_-]
	cIdent                     // assignment key: [A-Za-z0-9_.-]
	cToken                     // bearer token (RFC 6750 b64token): [A-Za-z0-9._~+/-]
)

var class = func() (t [256]uint16) {
	for c := 0; c < 256; c++ {
		var k uint16
		switch {
		case c >= '0' && c <= '9':
			k = cWord | cDigit | cHex | cLocal | cDomain | cB64 | cB64URL | cIdent | cToken
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
			k = cWord | cAlpha | cLocal | cDomain | cB64 | cB64URL | cIdent | cToken
			if c <= 'Z' {
				k |= cUpper
			}
			if (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f') {
				k |= cHex
			}
		case c >= 0x80:
			k = cLocal | cDomain
		}
		switch c {
		case '_':
			k |= cWord | cLocal | cB64URL | cIdent | cToken
		case '.':
			k |= cLocal | cIdent | cToken
		case '-':
			k |= cLocal | cDomain | cB64URL | cIdent | cToken
		case '+':
			k |= cLocal | cB64 | cToken
		case '/':
			k |= cB64 | cToken
		case '%':
			k |= cLocal
		case '~':
			k |= cToken
		}
		t[c] = k
	}
	return t
}()

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isWord(c byte) bool  { return class[c]&cWord != 0 }

// What the scanning loop does with a byte (detectors.act).
const (
	actNone   uint8 = iota // nothing can start here
	actWord                // a word byte that never starts a match
	actTrig                // a word byte that may start a match
	actTrigUp              // a letter: may start an IBAN (two letters, two digits)
	actAt
	actAssign
	actPhone
	actDash
)

// detectors is the immutable set of enabled detectors with its dispatch
// table; it is shared by every scanner of a Masker.
type detectors struct {
	on     [numEntities]bool
	any    bool
	digits bool // any detector of digit runs
	// act maps every byte to its action, so the loop does one table load
	// per byte and calls word only for words that may start a match.
	act [256]uint8
	// pre is the prefilter; see needsScan.
	pre prefilter
	// pairs holds, per first letter, the second letters with which a word
	// may start a letter-triggered match (word's switch): "ey" for a JWT,
	// "sk" for a Stripe key, "be" for a bearer token, … A trigger letter
	// followed by any other letter is not examined, which spares the
	// common words of prose ("sold", "with", "hinge") the call to word.
	// pairsOff turns the filter off, for tests.
	pairs    [256][4]uint64
	pairsOff bool
}

// pairOK reports whether a word starting with c, c1 may start a letter
// triggered match.
func (d *detectors) pairOK(c, c1 byte) bool {
	return d.pairsOff || d.pairs[c][c1>>6]&(1<<(c1&63)) != 0
}

func newDetectors(on [numEntities]bool) *detectors {
	d := &detectors{on: on}
	for _, v := range on {
		d.any = d.any || v
	}
	d.digits = on[entCard] || on[entPhone] || on[entSSN] || on[entIP]
	for c := range 256 {
		if isWord(byte(c)) {
			d.act[c] = actWord
		}
	}
	trig := func(on bool, bytes string) {
		for i := range len(bytes) {
			if on {
				d.act[bytes[i]] = actTrig
			}
		}
	}
	if on[entIBAN] {
		for c := range 256 {
			if class[c]&cAlpha != 0 {
				d.act[c] = actTrigUp
			}
		}
	}
	trig(d.digits, "0123456789")
	trig(on[entAWSKeyID], "A")
	trig(on[entJWT], "e")
	trig(on[entGitHub], "g")
	trig(on[entSlack], "x")
	trig(on[entSlackWebhook], "h")
	trig(on[entStripe], "srw")
	trig(on[entBearer] || on[entBasicAuth], "Bb")
	trig(on[entCredential], "Pp")
	if on[entEmail] {
		d.act['@'] = actAt
	}
	if on[entCredential] || on[entAWSSecret] {
		d.act['='] = actAssign
		d.act[':'] = actAssign
	}
	if on[entIP] {
		d.act[':'] = actAssign
	}
	if on[entPhone] {
		d.act['+'] = actPhone
		d.act['('] = actPhone
	}
	if on[entPrivateKey] {
		d.act['-'] = actDash
	}
	d.pre = newPrefilter(on)
	pair := func(on bool, firsts, seconds string) {
		for i := range len(firsts) {
			for k := range len(seconds) {
				if on {
					c1 := seconds[k]
					d.pairs[firsts[i]][c1>>6] |= 1 << (c1 & 63)
				}
			}
		}
	}
	pair(on[entAWSKeyID], "A", "KS")
	pair(on[entJWT], "e", "y")
	pair(on[entGitHub], "g", "hi")
	pair(on[entSlack], "x", "oa")
	pair(on[entSlackWebhook], "h", "to")
	pair(on[entStripe], "srw", "kh")
	pair(on[entBearer] || on[entBasicAuth] || on[entCredential], "BbPp", "EeAa")
	return d
}

// span is one detected entity: b[start:end].
type span struct {
	start, end int
	ent        entity
}

// maxGroups bounds the digit groups of one run the scanner looks at; see
// numeric.
const maxGroups = 24

// scanner finds entity spans in a value. It is owned by one goroutine and
// reuses its span slice: the result of scan is valid until the next call.
type scanner struct {
	d     *detectors
	spans []span
	// last is the end of the last span: look-backs never cross it.
	last int
	// awsUntil ends the window after an AWS key id in which a bare 40
	// character base64 word is taken as its secret key.
	awsUntil int
	// first stops the scan at the first span (opaque values are nulled
	// whole, so one hit is enough).
	first bool
	done  bool
	// inValue is set while an assignment's value is scanned for more
	// specific entities; nested assignments are not looked for then.
	inValue bool
	// groups is the digit-group buffer of numeric.
	groups [maxGroups]group
}

func (s *scanner) emit(start, end int, e entity) {
	s.spans = append(s.spans, span{start, end, e})
	s.last = end
	if s.first {
		s.done = true
	}
}

// scan returns the spans of b's entities, in order and not overlapping.
func (s *scanner) scan(b []byte) []span {
	s.spans = s.spans[:0]
	if len(b) < minScan || !s.d.pre.needsScan(b) {
		return s.spans
	}
	s.last, s.awsUntil, s.done = 0, 0, false
	s.loop(b, 0)
	return s.spans
}

// loop is the scanning pass over b from i.
func (s *scanner) loop(b []byte, i int) {
	act := &s.d.act
	n := len(b)
	for i < n && !s.done {
		a := act[b[i]]
		if a == actNone {
			i++
			continue
		}
		if a <= actTrigUp {
			j := i + 1
			for j < n && class[b[j]]&cWord != 0 {
				j++
			}
			// A word is examined only at a word boundary, and only if
			// its first byte may start a match, it has an IBAN's shape
			// (two letters, two digits), or it is followed by ':' (IPv6);
			// awsUntil opens a window for any word.
			// A trigger letter needs a second letter in its pair set.
			c := b[i]
			if s.boundary(b, i) &&
				((a == actTrig && (class[c]&cDigit != 0 || (i+1 < j && s.d.pairOK(c, b[i+1])))) ||
					(j < n && b[j] == ':') || i < s.awsUntil ||
					(a >= actTrig && s.d.on[entIBAN] && j >= i+4 && class[c]&cAlpha != 0 && class[b[i+1]]&cAlpha != 0 && isDigit(b[i+2]) && isDigit(b[i+3]))) {
				if e := s.word(b, i, j); e > j {
					j = e
				}
			}
			i = j
			continue
		}
		switch a {
		case actAt:
			i = s.email(b, i)
		case actAssign:
			i = s.assign(b, i)
		case actPhone:
			i = s.phoneStart(b, i)
		case actDash:
			i = s.pem(b, i)
		}
	}
}

// boundary reports whether b[i] starts a word: it follows a non-word byte,
// the start, or the end of a span (which masking replaces, so what follows
// a span is judged the same way before and after masking).
func (s *scanner) boundary(b []byte, i int) bool {
	return i == 0 || i == s.last || class[b[i-1]]&cWord == 0
}

// word examines the word b[i:j] that starts at a word boundary and returns
// where scanning resumes (j, or the end of a match).
func (s *scanner) word(b []byte, i, j int) int {
	d := s.d
	c := b[i]
	if i < s.awsUntil {
		if e := s.awsSecret(b, i); e > 0 {
			return e
		}
	}
	hexColon := d.on[entIP] && j-i <= 4 && j < len(b) && b[j] == ':'
	if class[c]&cDigit != 0 {
		if hexColon && allClass(b[i:j], cHex) {
			if e := s.ipv6(b, i); e > 0 {
				return e
			}
		}
		if d.digits && allClass(b[i:j], cDigit) {
			return s.numeric(b, i)
		}
		return j
	}
	// The second byte (or the word's length) rules most words out before
	// a matcher is called.
	e, c1, wl := 0, byte(0), j-i
	if wl > 1 {
		c1 = b[i+1]
	}
	switch c {
	case 'A':
		if wl == 20 && d.on[entAWSKeyID] {
			e = s.awsKeyID(b, i, j)
		}
	case 'e':
		if c1 == 'y' && d.on[entJWT] {
			e = s.jwt(b, i)
		}
	case 'g':
		if (c1 == 'h' || c1 == 'i') && wl >= 26 && d.on[entGitHub] {
			e = s.github(b, i, j)
		}
	case 'x':
		if (c1 == 'o' || c1 == 'a') && d.on[entSlack] {
			e = s.slack(b, i)
		}
	case 'h':
		if (c1 == 't' || c1 == 'o') && d.on[entSlackWebhook] {
			e = s.slackWebhook(b, i)
		}
	case 's', 'r', 'w':
		if (c1 == 'k' || c1 == 'h') && wl >= 22 && d.on[entStripe] {
			e = s.stripe(b, i, j)
		}
	case 'B', 'b', 'P', 'p':
		if wl == 5 || wl == 6 || wl == 8 {
			e = s.authWord(b, i, j)
		}
	}
	if e > 0 {
		return e
	}
	if class[c]&cAlpha != 0 && class[c1]&cAlpha != 0 && d.on[entIBAN] {
		if e := s.iban(b, i); e > 0 {
			return e
		}
	}
	if hexColon && allClass(b[i:j], cHex) {
		if e := s.ipv6(b, i); e > 0 {
			return e
		}
	}
	return j
}

func allClass(b []byte, k uint16) bool {
	for _, c := range b {
		if class[c]&k == 0 {
			return false
		}
	}
	return true
}

// hasPrefix is bytes.HasPrefix for a string prefix without a conversion.
func hasPrefix(b []byte, p string) bool {
	return len(b) >= len(p) && string(b[:len(p)]) == p
}

// equalFold reports whether b equals the lower-case ASCII word w, ignoring
// case.
func equalFold(b []byte, w string) bool {
	if len(b) != len(w) {
		return false
	}
	for i := range b {
		if b[i]|0x20 != w[i] {
			return false
		}
	}
	return true
}

func sepIn(c byte, set string) bool {
	for i := 0; i < len(set); i++ {
		if set[i] == c {
			return true
		}
	}
	return false
}

// minScan is the shortest text any detector can match ("//:a@", a URL's
// one-byte password), so shorter values are not scanned at all.
const minScan = 5
