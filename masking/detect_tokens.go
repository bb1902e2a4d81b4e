package masking

import (
	"encoding/base64"
	"encoding/json"
)

// awsWindow is how far after an AWS access key id a bare 40-character
// base64 word is taken as its secret access key (key id and secret travel
// together: CSV exports, credentials files, env dumps).
const awsWindow = 256

// awsKeyID matches an AWS access key id: AKIA (long-term) or ASIA
// (temporary) and 16 upper-case letters or digits, as a whole word.
func (s *scanner) awsKeyID(b []byte, i, j int) int {
	if j-i != 20 || !(hasPrefix(b[i:], "AKIA") || hasPrefix(b[i:], "ASIA")) {
		return 0
	}
	for _, c := range b[i+4 : j] {
		if class[c]&cUpper == 0 && !isDigit(c) {
			return 0
		}
	}
	s.emit(i, j, entAWSKeyID)
	if s.d.on[entAWSSecret] {
		s.awsUntil = j + awsWindow
	}
	return j
}

// awsSecret matches, near an access key id, a word of exactly 40 standard
// base64 characters with upper- and lower-case letters (so a 40-digit hex
// git SHA never qualifies). The secret may start with '/' or '+', which are
// not word bytes, so the look-back covers them.
func (s *scanner) awsSecret(b []byte, i int) int {
	ts := i
	for ts > s.last && i-ts < 40 && (b[ts-1] == '/' || b[ts-1] == '+') {
		ts--
	}
	k := ts
	for k < len(b) && k-ts <= 40 && class[b[k]]&cB64 != 0 {
		k++
	}
	if k-ts != 40 || (k < len(b) && (isWord(b[k]) || b[k] == '=')) {
		return 0
	}
	var upper, lower bool
	for _, c := range b[ts:k] {
		upper = upper || (c >= 'A' && c <= 'Z')
		lower = lower || (c >= 'a' && c <= 'z')
	}
	if !upper || !lower {
		return 0
	}
	s.emit(ts, k, entAWSSecret)
	return k
}

// maxJWTHeader bounds the header segment decoded per candidate.
const maxJWTHeader = 4096

// jwt matches a JSON Web Token (JWS: three base64url segments; JWE: five)
// whose header segment, base64url-decoded, is a JSON object with an "alg"
// member. Shape alone is not enough: base64 of any JSON object also starts
// with "eyJ".
func (s *scanner) jwt(b []byte, i int) int {
	n := len(b)
	if i+3 > n || b[i+1] != 'y' || b[i+2] != 'J' {
		return 0
	}
	e1 := b64urlEnd(b, i)
	if e1 >= n || b[e1] != '.' || e1-i > maxJWTHeader {
		return 0
	}
	e2 := b64urlEnd(b, e1+1)
	if e2-e1-1 < 2 || e2 >= n || b[e2] != '.' {
		return 0
	}
	end := b64urlEnd(b, e2+1)
	if end < n && b[end] == '.' {
		if e4 := b64urlEnd(b, end+1); e4 > end+1 && e4 < n && b[e4] == '.' {
			end = b64urlEnd(b, e4+1) // JWE
		}
	}
	if !jwtHeader(b[i:e1]) {
		return 0
	}
	s.emit(i, end, entJWT)
	return end
}

func b64urlEnd(b []byte, k int) int {
	for k < len(b) && class[b[k]]&cB64URL != 0 {
		k++
	}
	return k
}

func jwtHeader(seg []byte) bool {
	var buf [maxJWTHeader * 3 / 4]byte
	m, err := base64.RawURLEncoding.Decode(buf[:], seg)
	if err != nil {
		return false
	}
	var h map[string]json.RawMessage
	if json.Unmarshal(buf[:m], &h) != nil {
		return false
	}
	alg, ok := h["alg"]
	return ok && len(alg) > 0 && alg[0] == '"'
}

// github matches GitHub tokens: ghp_ (classic personal), gho_ (OAuth), ghu_
// (user-to-server), ghs_ (server-to-server), ghr_ (refresh) with 36 or more
// alphanumerics, and github_pat_ fine-grained tokens.
func (s *scanner) github(b []byte, i, j int) int {
	w := b[i:j]
	ok := false
	switch {
	case len(w) >= 40 && w[1] == 'h' && w[3] == '_' && sepIn(w[2], "pousr"):
		ok = allClass(w[4:], cAlpha|cDigit)
	case hasPrefix(w, "github_pat_"):
		ok = len(w) >= len("github_pat_")+22
	}
	if !ok {
		return 0
	}
	s.emit(i, j, entGitHub)
	return j
}

// slack matches Slack tokens: xoxa-, xoxb- (bot), xoxp- (user), xoxr-
// (refresh), xoxo-, xoxs- and xapp- (app-level), 15 or more characters.
func (s *scanner) slack(b []byte, i int) int {
	n := len(b)
	k := 0
	switch {
	case i+5 <= n && b[i+1] == 'o' && b[i+2] == 'x' && sepIn(b[i+3], "abpros") && b[i+4] == '-':
		k = i + 5
	case hasPrefix(b[i:], "xapp-"):
		k = i + 5
	default:
		return 0
	}
	for k < n && (class[b[k]]&(cAlpha|cDigit) != 0 || b[k] == '-') {
		k++
	}
	if k-i < 15 {
		return 0
	}
	s.emit(i, k, entSlack)
	return k
}

// slackWebhook matches an incoming-webhook or workflow URL on
// hooks.slack.com, with or without its scheme; the whole URL is the secret.
func (s *scanner) slackWebhook(b []byte, i int) int {
	k := i
	switch {
	case hasPrefix(b[k:], "https://"):
		k += len("https://")
	case hasPrefix(b[k:], "http://"):
		k += len("http://")
	}
	if !hasPrefix(b[k:], "hooks.slack.com/") {
		return 0
	}
	k += len("hooks.slack.com/")
	if !hasPrefix(b[k:], "services/") && !hasPrefix(b[k:], "workflows/") && !hasPrefix(b[k:], "triggers/") {
		return 0
	}
	p := k
	for k < len(b) && (class[b[k]]&(cAlpha|cDigit) != 0 || sepIn(b[k], "/_-")) {
		k++
	}
	if k-p < 20 {
		return 0
	}
	s.emit(i, k, entSlackWebhook)
	return k
}

// stripe matches Stripe secret and restricted keys (sk_live_, sk_test_,
// rk_live_, rk_test_) and webhook signing secrets (whsec_) with 16 or more
// alphanumerics. Publishable keys (pk_) are public by design.
func (s *scanner) stripe(b []byte, i, j int) int {
	w := b[i:j]
	p := 0
	for _, pre := range [...]string{"sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_"} {
		if hasPrefix(w, pre) {
			p = len(pre)
			break
		}
	}
	if p == 0 || len(w)-p < 16 || !allClass(w[p:], cAlpha|cDigit) {
		return 0
	}
	s.emit(i, j, entStripe)
	return j
}

// authWord handles the words that introduce a credential: "Bearer <token>"
// (a b64token of 16 or more characters with the entropy of a random
// string), "Basic <base64 of user:password>", and SQL's PASSWORD
// '<literal>' (CREATE/ALTER ROLE echoed in a message or log line).
func (s *scanner) authWord(b []byte, i, j int) int {
	w := b[i:j]
	bearer := equalFold(w, "bearer") && s.d.on[entBearer]
	basic := equalFold(w, "basic") && s.d.on[entBasicAuth]
	password := equalFold(w, "password") && s.d.on[entCredential]
	if !bearer && !basic && !password {
		return 0
	}
	n := len(b)
	k := j
	for k < n && k-j < 4 && b[k] == ' ' {
		k++
	}
	if k == j || k >= n {
		return 0
	}
	switch {
	case bearer:
		t := k
		for t < n && class[b[t]]&cToken != 0 {
			t++
		}
		for t < n && b[t] == '=' {
			t++
		}
		if t-k < 16 || entropy(b[k:t]) < 3 {
			return 0
		}
		s.emit(k, t, entBearer)
		return t
	case basic:
		t := k
		for t < n && class[b[t]]&cB64 != 0 {
			t++
		}
		for t < n && b[t] == '=' {
			t++
		}
		if t-k < 8 || t-k > 1024 || (t < n && isWord(b[t])) || !basicCredentials(b[k:t]) {
			return 0
		}
		s.emit(k, t, entBasicAuth)
		return t
	case password && b[k] == '\'':
		t := k + 1
		for t < n && b[t] != '\'' && b[t] != '\n' {
			t++
		}
		if t == k+1 || placeholder(b[k+1:t]) {
			return 0
		}
		s.emit(k+1, t, entCredential)
		return t
	}
	return 0
}

// basicCredentials reports whether b is standard base64 of printable
// "user:password".
func basicCredentials(b []byte) bool {
	var buf [768]byte
	m, err := base64.StdEncoding.Decode(buf[:], b)
	if err != nil || m < 3 {
		return false
	}
	colon := false
	for _, c := range buf[:m] {
		if c < 0x20 || c == 0x7f {
			return false
		}
		colon = colon || c == ':'
	}
	return colon
}
