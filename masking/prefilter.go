package masking

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// prefilter rules a value out before the scanning pass when no enabled
// detector can match in it, by tests far cheaper than the pass:
//   - an e-mail needs '@', a phone 8 digits, an SSN 9, a card 13, an IPv4
//     address 4 and an IPv6 address ':' (trigger bytes, digit count);
//   - each secret detector needs one of a few fixed strings (secretFilter).
//
// An IBAN needs neither (two letters, two digits), so with the IBAN
// detector on every value is scanned.
type prefilter struct {
	on        bool
	minDigits int // 0: no digit detector is on
	trig      [2]byte
	ntrig     int
	secrets   secretFilter
}

// Lower bounds on the digits of each digit detector's shortest match.
const (
	minCardDigits  = 13
	minSSNDigits   = 9
	minPhoneDigits = 8
	minIPv4Digits  = 4
)

func newPrefilter(on [numEntities]bool) prefilter {
	if on[entIBAN] {
		return prefilter{}
	}
	p := prefilter{on: true, secrets: newSecretFilter(on)}
	defer p.secrets.absorbTriggers(&p)
	digits := func(e entity, n int) {
		if on[e] && (p.minDigits == 0 || n < p.minDigits) {
			p.minDigits = n
		}
	}
	digits(entCard, minCardDigits)
	digits(entSSN, minSSNDigits)
	digits(entPhone, minPhoneDigits)
	digits(entIP, minIPv4Digits)
	trig := func(e entity, c byte) {
		if on[e] {
			p.trig[p.ntrig] = c
			p.ntrig++
		}
	}
	trig(entEmail, '@')
	// A phone's '+' or '(' needs no trigger: every phone number has
	// minPhoneDigits digits, which the count covers.
	trig(entIP, ':')
	return p
}

// needsScan reports whether b may hold a match. It looks for the trigger
// bytes with bytes.IndexByte (vectorised), counts digits eight bytes at a
// time (SWAR, in place of a byte loop: this runs over every text value of
// every row), stopping as soon as the answer is yes, and then asks the
// secret detectors' filter.
func (p *prefilter) needsScan(b []byte) bool {
	if !p.on {
		return true
	}
	for _, c := range p.trig[:p.ntrig] {
		if bytes.IndexByte(b, c) >= 0 {
			return true
		}
	}
	if p.minDigits > 0 && len(b) >= p.minDigits && digitsAtLeast(b, p.minDigits) {
		return true
	}
	return p.secrets.on && p.secrets.mayHold(b)
}

// digitsAtLeast reports whether b holds at least min ASCII digits.
func digitsAtLeast(b []byte, min int) bool {
	const ones, high = 0x0101010101010101, 0x8080808080808080
	n := 0
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		x7 := x &^ high
		// A lane's high bit ends up set when its byte is below 0x80, at
		// least '0' and not at least ':'; no lane carries into the next.
		d := ((x7 + (0x80-'0')*ones) &^ (x7 + (0x80-':')*ones)) & high &^ x
		n += bits.OnesCount64(d)
		if n >= min {
			return true
		}
		b = b[8:]
	}
	for _, c := range b {
		if isDigit(c) {
			n++
		}
	}
	return n >= min
}

// secretFilter tells values that may hold a secret from those that cannot.
// Every secret detector matches only where one of a few fixed strings
// occurs, and each of those strings holds a byte that ordinary text
// rarely has, or a capital or 'b' that leads to a short comparison:
//
//	jwt                "eyJ" and two '.'                      'J' and '.'
//	aws_access_key     "AKIA", "ASIA"                         'I' and 'K' or 'S'
//	aws_secret_key     after an access key id, or as credential
//	private_key        "-----BEGIN "                          '-' and 'G'
//	github_token       "gh" ("ghp_" …), "github_pat_"         '_'
//	slack_token        "xox-", "xapp-" ("xoxb-" …)           '-' and 'x'
//	slack_webhook      "hooks.slack.com/"                     '/'
//	stripe_key         "k_live_", "k_test_", "whsec_"         '_'
//	bearer_token       the word "bearer", any case            'b', 'B'
//	basic_auth         the word "basic", any case             'b', 'B'
//	credential         a key word (password, token, …, any case) and
//	                   '=' or ':'; "password" and a single quote; '@' (a URL's
//	                   user:password@)
//
// mayHold makes one pass that ORs each byte's flags from a table, then
// looks for the strings of the flags it met only: ordinary prose has none
// of '-', '_', '/', '=', ':', '@' or a single quote, and its 'b's are quickly
// ruled out. A backslash makes it answer yes: a codec may unescape parts
// of a value (a PostgreSQL array's "e\yJ…"), which would join a string
// that the value itself splits.
type secretFilter struct {
	on    bool
	flags [256]uint16
}

// Flags of secretFilter's table: what a byte calls for.
const (
	sfAlways uint16 = 1 << iota // '@', '\\': scan
	sfDash                      // '-': with 'G', "-----BEGIN "; with 'x', "xox", "xapp-"
	sfG                         // 'G': with '-', "-----BEGIN "
	sfX                         // 'x': with '-', "xox", "xapp-"
	sfUnder                     // '_': "gh", "github_pat_", Stripe's
	sfSlash                     // '/': "hooks.slack.com/"
	sfAssign                    // '=', ':': a credential key word
	sfQuote                     // '\'': "password"
	sfJ                         // 'J': with '.', "eyJ"
	sfDot                       // '.': with 'J', "eyJ"
	sfI                         // 'I': with 'K', "AKIA"; with 'S', "ASIA"
	sfK                         // 'K': with 'I', "AKIA"
	sfS                         // 'S': with 'I', "ASIA"
	sfB                         // 'b', 'B': "bearer", "basic"
)

// Which secret detectors each flag serves.
var (
	pemOn     = []entity{entPrivateKey}
	slackOn   = []entity{entSlack}
	githubOn  = []entity{entGitHub}
	stripeOn  = []entity{entStripe}
	webhookOn = []entity{entSlackWebhook}
	credOn    = []entity{entCredential, entAWSSecret}
	jwtOn     = []entity{entJWT}
	awsOn     = []entity{entAWSKeyID, entAWSSecret}
	authOn    = []entity{entBearer, entBasicAuth}
)

func newSecretFilter(on [numEntities]bool) secretFilter {
	var f secretFilter
	anyOn := func(es []entity) bool {
		for _, e := range es {
			if on[e] {
				return true
			}
		}
		return false
	}
	set := func(es []entity, flag uint16, bytes string) {
		if !anyOn(es) {
			return
		}
		f.on = true
		for i := range len(bytes) {
			f.flags[bytes[i]] |= flag
		}
	}
	set(pemOn, sfDash, "-")
	set(pemOn, sfG, "G")
	set(slackOn, sfDash, "-")
	set(slackOn, sfX, "x")
	set(githubOn, sfUnder, "_")
	set(stripeOn, sfUnder, "_")
	set(webhookOn, sfSlash, "/")
	set(credOn, sfAssign, "=:")
	set(credOn, sfAlways, "@")
	set([]entity{entCredential}, sfQuote, "'")
	set(jwtOn, sfJ, "J")
	set(jwtOn, sfDot, ".")
	set(awsOn, sfI, "I")
	set(awsOn, sfK, "K")
	set(awsOn, sfS, "S")
	set(authOn, sfB, "bB")
	if f.on {
		f.flags['\\'] |= sfAlways
	}
	return f
}

// Strings each flag calls for; a flag may serve two detectors, whose
// strings are all looked for (a flag is only in the table while a detector
// it serves is on).
var (
	jwtStrings     = [][]byte{[]byte("eyJ")}
	akiaStrings    = [][]byte{[]byte("AKIA")}
	asiaStrings    = [][]byte{[]byte("ASIA")}
	pemStrings     = [][]byte{[]byte("-----BEGIN ")}
	slackStrings   = [][]byte{[]byte("xox"), []byte("xapp-")}
	underStrings   = [][]byte{[]byte("gh"), []byte("github_pat_"), []byte("k_live_"), []byte("k_test_"), []byte("whsec_")}
	webhookStrings = [][]byte{[]byte("hooks.slack.com/")}
)

// mayHold reports whether an enabled secret detector may match in b.
func (f *secretFilter) mayHold(b []byte) bool {
	t := &f.flags
	var f0, f1 uint16
	v := b
	for len(v) >= 8 { // one load; two accumulators, so the ORs need not wait on each other
		x := binary.LittleEndian.Uint64(v)
		f0 |= t[byte(x)] | t[byte(x>>16)] | t[byte(x>>32)] | t[byte(x>>48)]
		f1 |= t[byte(x>>8)] | t[byte(x>>24)] | t[byte(x>>40)] | t[byte(x>>56)]
		v = v[8:]
	}
	fl := f0 | f1
	for _, c := range v {
		fl |= t[c]
	}
	return fl != 0 && f.confirm(b, fl)
}

// confirm looks for the strings of the flags that b's bytes raised.
func (f *secretFilter) confirm(b []byte, fl uint16) bool {
	contains := func(flag uint16, strs [][]byte) bool {
		if fl&flag != flag {
			return false
		}
		for _, x := range strs {
			if bytes.Contains(b, x) {
				return true
			}
		}
		return false
	}
	switch {
	case fl&sfAlways != 0,
		contains(sfJ|sfDot, jwtStrings), contains(sfI|sfK, akiaStrings), contains(sfI|sfS, asiaStrings), contains(sfDash|sfG, pemStrings), contains(sfDash|sfX, slackStrings),
		contains(sfUnder, underStrings), contains(sfSlash, webhookStrings),
		fl&sfB != 0 && hasAuthWord(b),
		fl&sfQuote != 0 && containsFold(b, "password"):
		return true
	}
	return fl&sfAssign != 0 && hasCredWord(b)
}

// absorbTriggers moves p's trigger bytes into f's table, so that the
// table's pass finds them too instead of a search of their own.
func (f *secretFilter) absorbTriggers(p *prefilter) {
	if !f.on {
		return
	}
	for _, c := range p.trig[:p.ntrig] {
		f.flags[c] |= sfAlways
	}
	p.ntrig = 0
}

// hasAuthWord reports whether b holds the word "bearer" or "basic" in any
// case, as authWord takes them: a whole word, so one that starts after a
// byte that is not a word byte (or at the start; a word right after
// another detector's match is only examined when that detector's strings
// are in b, and then b is scanned anyway).
func hasAuthWord(b []byte) bool {
	for _, c := range [2]byte{'b', 'B'} {
		for k := 0; ; {
			j := bytes.IndexByte(b[k:], c)
			if j < 0 {
				break
			}
			k += j
			if k == 0 || !isWord(b[k-1]) {
				for _, w := range [...]string{"bearer", "basic"} {
					if foldPrefix(b[k:], w) && (len(b) == k+len(w) || !isWord(b[k+len(w)])) {
						return true
					}
				}
			}
			k++
		}
	}
	return false
}

// containsFold reports whether b contains w (lower-case ASCII letters) in
// any case.
func containsFold(b []byte, w string) bool {
	for _, c := range [2]byte{w[0], w[0] - ('a' - 'A')} {
		for k := 0; ; {
			j := bytes.IndexByte(b[k:], c)
			if j < 0 {
				break
			}
			k += j
			if foldPrefix(b[k:], w) {
				return true
			}
			k++
		}
	}
	return false
}

// foldPrefix reports whether b starts with w (lower case), ignoring the
// case of ASCII letters, as credKeyword and equalFold compare.
func foldPrefix(b []byte, w string) bool {
	if len(b) < len(w) {
		return false
	}
	for i := range len(w) {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != w[i] {
			return false
		}
	}
	return true
}

// credStart marks the lower-cased pairs of bytes a credential key word
// starts with ("pa", "pw", "se", "to", "ap", "ac", "pr", "cr"), indexed by
// the first byte, either case: a bit per second byte, either case.
var credStart = func() (t [256][4]uint64) {
	for _, w := range credWords {
		for _, c0 := range [2]byte{w.word[0], w.word[0] - ('a' - 'A')} {
			for _, c1 := range [2]byte{w.word[1], w.word[1] - ('a' - 'A')} {
				t[c0][c1>>6] |= 1 << (c1 & 63)
			}
		}
	}
	return t
}()

// hasCredWord reports whether b holds, in any case, a fragment credKeyword
// takes for a credential's key (password, token, api_key, …).
func hasCredWord(b []byte) bool {
	for i := 0; i+1 < len(b); i++ {
		c0, c1 := b[i], b[i+1]
		if credStart[c0][c1>>6]&(1<<(c1&63)) == 0 {
			continue
		}
		c := c0
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		for _, w := range credByFirst[c] {
			if foldPrefix(b[i:], credWords[w].word) {
				return true
			}
		}
	}
	return false
}
