package masking

// Digit runs: payment cards, phone numbers, US SSNs and IPv4 addresses.
//
// A run is a sequence of digit groups joined by single separators (' ',
// '-', '.', '/'), where a group may be written "(digits)" and a run may
// start with '+'. Each detector is a pattern over consecutive groups, so a
// date (2024-01-15), a time, a price (1299.99), an order id (ORD-2024-0001)
// or a long integer are recognised by shape and rejected, and a digit run
// glued to letters (550e8400, v1.2.3.4, abc123) never starts one.

// group is one run of digits in a digit run.
type group struct {
	start, end int // the digits
	// sep is the byte before the group: 0 for the first, ' ', '-', '.',
	// '/', or ')' right after a closing parenthesis ("(0)20").
	sep   byte
	paren bool // written as "(digits)"
}

func (g group) len() int { return g.end - g.start }

// from is where a phone number starting at this group begins.
func (g group) from() int {
	if g.paren {
		return g.start - 1
	}
	return g.start
}

// to is where a phone number ending at this group ends.
func (g group) to() int {
	if g.paren {
		return g.end + 1
	}
	return g.end
}

// run describes the context of a digit run.
type run struct {
	plus      bool // starts with '+'
	glued     bool // follows a word and one of "-_./#": part of an identifier
	dotBefore bool // follows a '.'
	lastGlued bool // the last group is followed by a word byte
	suffixed  bool // the last group is followed by '-' and a letter (1.2.3.4-beta)
	truncated bool // more groups follow than fit in the buffer
}

// lookahead is the most groups one pattern spans.
const lookahead = 8

// numeric tokenizes the digit run starting at i (a digit, or '+' or '('
// before one) and runs the digit detectors over its groups. It returns where
// scanning resumes. A run longer than maxGroups is handled in windows: the
// patterns starting in the first maxGroups-lookahead groups are tried, and
// scanning resumes at the next group, so memory stays fixed and the work
// stays linear.
func (s *scanner) numeric(b []byte, i int) int {
	n := len(b)
	var r run
	p := i
	if b[p] == '+' {
		r.plus = true
		p++
	}
	if i > s.last { // what precedes a span is not context: masking replaces it
		pc := b[i-1]
		r.dotBefore = pc == '.'
		r.glued = (pc == '-' || pc == '.' || pc == '/' || pc == '#') && i-1 > s.last && isWord(b[i-2])
	}
	gs := s.groups[:0]
	var sep byte
	end := p
	for {
		paren := p < n && b[p] == '('
		st := p
		if paren {
			st++
		}
		q := st
		for q < n && isDigit(b[q]) {
			q++
		}
		if q == st {
			break
		}
		g := group{start: st, end: q, sep: sep}
		if paren && q < n && b[q] == ')' {
			g.paren = true
			q++
		}
		gs = append(gs, g)
		end = q
		if len(gs) == maxGroups {
			r.truncated = true
			break
		}
		if q >= n {
			break
		}
		c := b[q]
		switch {
		case c == ' ' || c == '-' || c == '.' || c == '/':
			sep = c
			q++
		case g.paren && (isDigit(c) || c == '('):
			sep = ')'
		default:
			q = n // no separator: the run ends
		}
		if q >= n || !(isDigit(b[q]) || (b[q] == '(' && q+1 < n && isDigit(b[q+1]))) {
			break
		}
		p = q
	}
	if len(gs) == 0 {
		return i + 1
	}
	if end < n {
		r.lastGlued = isWord(b[end])
		r.suffixed = b[end] == '-' && end+1 < n && class[b[end+1]]&cAlpha != 0
	}
	if len(gs) == 1 && !r.plus {
		// One bare group: only a 13–19 digit card or a 9-digit SSN.
		if n := gs[0].len(); n < 9 || (n < 13 && n != 9) || n > 19 {
			return max(end, s.last, i+1)
		}
	}
	limit := len(gs)
	if r.truncated {
		limit = maxGroups - lookahead
		r.lastGlued = false
	}
	for k := 0; k < limit && !s.done; {
		L, ent := s.digitMatch(b, gs, k, &r)
		if L == 0 {
			k++
			continue
		}
		start, end := gs[k].start, gs[k+L-1].end
		if ent == entPhone { // "(212) 555-0100" and "+44 …" are masked whole
			start, end = gs[k].from(), gs[k+L-1].to()
			if k == 0 && r.plus {
				start = i
			}
		}
		s.emit(start, end, ent)
		k += L
	}
	resume := end
	if r.truncated {
		resume = gs[limit].from()
	}
	return max(resume, s.last, i+1)
}

// digitMatch tries the digit detectors on the groups starting at k and
// returns how many groups matched and as what.
//
// Each matcher is guarded by the group shape it needs (a card starts with 4
// or 13–19 digits, an SSN with 3 or 9, a phone with '+', "1", 3 digits or a
// trunk 0, an address with a dotted octet), so the ids, prices and
// timestamps of ordinary rows skip them all.
func (s *scanner) digitMatch(b []byte, gs []group, k int, r *run) (int, entity) {
	on := &s.d.on
	g := gs[k]
	n := g.len()
	more := len(gs) - k - 1
	if on[entCard] && ((n == 4 && more >= 2) || (n >= 13 && n <= 19)) {
		if L := cardAt(b, gs, k, r); L > 0 {
			return L, entCard
		}
	}
	if on[entSSN] && ((n == 3 && more >= 2) || n == 9) {
		if L := ssnAt(b, gs, k, r); L > 0 {
			return L, entSSN
		}
	}
	if on[entPhone] && ((k == 0 && r.plus) || (more >= 1 && (n == 3 || b[g.start] == '0' || (n == 1 && b[g.start] == '1')))) {
		if L := phoneAt(b, gs, k, r); L > 0 {
			return L, entPhone
		}
	}
	if on[entIP] && n <= 3 && more >= 3 && gs[k+1].sep == '.' {
		if L := ipv4At(b, gs, k, r); L > 0 {
			return L, entIP
		}
	}
	return 0, 0
}

// endsGlued reports whether a match ending with group k+L-1 would end glued
// to a word.
func endsGlued(gs []group, k, L int, r *run) bool {
	return k+L == len(gs) && r.lastGlued
}

// cardAt matches a payment card number: 13 to 19 digits, either in one
// group or as a first group of 4 followed by groups of 4 or 6 joined by one
// kind of separator (space or dash), the last group 1 to 6 digits. The
// number must pass Luhn and belong to a known issuer range (Visa,
// Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro, Mir, RuPay,
// Troy), which keeps 13–19 digit ids and timestamps starting with 1, 7, 8
// or 9 from firing. It prefers the longest valid grouping.
func cardAt(b []byte, gs []group, k int, r *run) int {
	g := gs[k]
	if n := g.len(); n != 4 {
		if n >= 13 && n <= 19 && !endsGlued(gs, k, 1, r) && validCard(b[g.start:g.end]) {
			return 1
		}
		return 0
	}
	if g.paren {
		return 0
	}
	var buf [19]byte
	total := copy(buf[:], b[g.start:g.end])
	best := 0
	var sep byte
	for L := 2; k+L <= len(gs) && L <= lookahead; L++ {
		h := gs[k+L-1]
		if h.paren {
			break
		}
		if L == 2 {
			if h.sep != ' ' && h.sep != '-' {
				break
			}
			sep = h.sep
		} else if h.sep != sep {
			break
		}
		hn := h.len()
		if total+hn > 19 {
			break
		}
		total += copy(buf[total:], b[h.start:h.end])
		if total >= 13 && !endsGlued(gs, k, L, r) && validCard(buf[:total]) {
			best = L
		}
		if hn != 4 && hn != 6 {
			break
		}
	}
	return best
}

func validCard(d []byte) bool {
	return len(d) >= 13 && len(d) <= 19 && cardIssuer(d) && luhn(d)
}

// cardIssuer reports whether the digits start with a card issuer's
// identification number and have a length that issuer uses.
func cardIssuer(d []byte) bool {
	n := len(d)
	p2 := int(d[0]-'0')*10 + int(d[1]-'0')
	p3 := p2*10 + int(d[2]-'0')
	p4 := p3*10 + int(d[3]-'0')
	in := func(lo, hi int) bool { return n >= lo && n <= hi }
	switch {
	case d[0] == '4': // Visa
		return n == 13 || n == 16 || n == 19
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720: // Mastercard
		return n == 16
	case p2 == 34, p2 == 37: // American Express
		return n == 15
	case p4 >= 2200 && p4 <= 2204: // Mir
		return in(16, 19)
	case p4 >= 3528 && p4 <= 3589: // JCB
		return in(16, 19)
	case p3 >= 300 && p3 <= 305, p4 == 3095, p2 == 36, p2 == 38, p2 == 39: // Diners Club
		return in(14, 19)
	case p2 == 50, p2 >= 56 && p2 <= 69: // Maestro, Discover, UnionPay, RuPay, Verve
		return in(13, 19)
	case p2 == 81, p2 == 82: // RuPay
		return n == 16
	case p4 == 9792: // Troy
		return n == 16
	}
	return false
}

// luhn reports whether the digits pass the Luhn (mod 10) check.
func luhn(d []byte) bool {
	sum, dbl := 0, false
	for i := len(d) - 1; i >= 0; i-- {
		x := int(d[i] - '0')
		if dbl {
			x *= 2
			if x > 9 {
				x -= 9
			}
		}
		sum += x
		dbl = !dbl
	}
	return sum%10 == 0
}

// ssnAt matches a US Social Security number, 3-2-4 digits joined by one
// dash or space, or nine digits alone, with a valid area (not 000, 666 or
// 9xx), group (not 00) and serial (not 0000).
func ssnAt(b []byte, gs []group, k int, r *run) int {
	g := gs[k]
	if g.paren || (k == 0 && (r.glued || r.plus)) {
		return 0
	}
	if g.len() == 9 {
		if (k > 0 && gs[k].sep != ' ') || (k+1 < len(gs) && gs[k+1].sep != ' ') || endsGlued(gs, k, 1, r) || r.dotBefore {
			return 0
		}
		d := b[g.start:g.end]
		if validSSN(d[:3], d[3:5], d[5:]) {
			return 1
		}
		return 0
	}
	if g.len() != 3 || k+2 >= len(gs) {
		return 0
	}
	g2, g3 := gs[k+1], gs[k+2]
	sep := g2.sep
	if (sep != '-' && sep != ' ') || g3.sep != sep || g2.paren || g3.paren || g2.len() != 2 || g3.len() != 4 {
		return 0
	}
	if (k > 0 && gs[k].sep == sep) || (k+3 < len(gs) && gs[k+3].sep == sep) || endsGlued(gs, k, 3, r) {
		return 0
	}
	if validSSN(b[g.start:g.end], b[g2.start:g2.end], b[g3.start:g3.end]) {
		return 3
	}
	return 0
}

func validSSN(area, grp, serial []byte) bool {
	a := string(area)
	return a != "000" && a != "666" && area[0] != '9' && string(grp) != "00" && string(serial) != "0000"
}

// ipv4At matches a dotted-quad IPv4 address: exactly four dot-joined
// decimal octets 0–255 without leading zeros. A longer dotted chain
// (1.2.3.4.5, an OID), a chain glued to a word (v1.2.3.4, 1.2.3.4a) or one
// followed by "-letters" (1.2.3.4-beta) is not an address. A bare "1.2.3.4"
// standing alone is indistinguishable from a four-part version string and
// is masked: failing closed beats guessing.
func ipv4At(b []byte, gs []group, k int, r *run) int {
	if k+3 >= len(gs) {
		return 0
	}
	if k == 0 {
		if r.dotBefore || r.plus {
			return 0
		}
	} else if gs[k].sep == '.' {
		return 0
	}
	for x := 0; x < 4; x++ {
		h := gs[k+x]
		if h.paren || (x > 0 && h.sep != '.') || h.len() > 3 || (h.len() > 1 && b[h.start] == '0') {
			return 0
		}
		v := 0
		for _, c := range b[h.start:h.end] {
			v = v*10 + int(c-'0')
		}
		if v > 255 {
			return 0
		}
	}
	if k+4 < len(gs) && gs[k+4].sep == '.' {
		return 0
	}
	if k+4 == len(gs) && (r.lastGlued || r.suffixed) {
		return 0
	}
	return 4
}
