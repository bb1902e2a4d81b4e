package masking

// phoneAt matches a phone number: E.164 ("+" and 8 to 15 digits, a "(0)"
// trunk allowed), a North American number ([1] NXX NXX XXXX, area code in
// parentheses allowed), or a national number with a trunk 0 ("020 7946
// 0958", "06-12345678", "01 23 45 67 89": 9 to 11 digits in 2 to 6 groups
// of 2 to 8 digits joined by one kind of separator; "00" and 8 to 15 more
// digits for an international prefix). Bare digit strings without a '+' are
// never phones: they are ids far more often. Seven digit local numbers
// (555-0100) are not detected either.
func phoneAt(b []byte, gs []group, k int, r *run) int {
	if k == 0 && r.plus {
		return e164(b, gs, r)
	}
	if k == 0 && r.glued {
		return 0
	}
	if L := nanpAt(b, gs, k, r); L > 0 {
		return L
	}
	return trunkAt(b, gs, k, r)
}

func e164(b []byte, gs []group, r *run) int {
	g := gs[0]
	if g.paren || b[g.start] == '0' {
		return 0
	}
	if g.len() == 1 && b[g.start] == '1' && len(gs) > 1 {
		if L := nanpAt(b, gs, 1, r); L > 0 {
			return 1 + L
		}
	}
	total, L := 0, 0
	for L < len(gs) && L < lookahead {
		h := gs[L]
		if L > 0 && h.sep == '/' {
			break
		}
		add := h.len()
		if h.paren && add == 1 && b[h.start] == '0' {
			add = 0 // the "(0)" of +44 (0)20 …
		}
		if total+add > 15 {
			break
		}
		total += add
		L++
	}
	if total < 8 || endsGlued(gs, 0, L, r) {
		return 0
	}
	return L
}

func nanpAt(b []byte, gs []group, k int, r *run) int {
	if k > 0 && (gs[k].sep == '-' || gs[k].sep == '.') {
		return 0 // inside a dashed or dotted id
	}
	j := k
	if g := gs[j]; g.len() == 1 && b[g.start] == '1' && !g.paren {
		j++
		if j >= len(gs) || !sepIn(gs[j].sep, " -.") {
			return 0
		}
	}
	if j+2 >= len(gs) {
		return 0
	}
	a, x, l := gs[j], gs[j+1], gs[j+2]
	if a.len() != 3 || x.len() != 3 || l.len() != 4 || x.paren || l.paren {
		return 0
	}
	if a.paren {
		if !sepIn(x.sep, " -)") {
			return 0
		}
	} else if !sepIn(x.sep, " -.") {
		return 0
	}
	if !sepIn(l.sep, " -.") || b[a.start] < '2' || b[x.start] < '2' {
		return 0
	}
	if j+3 < len(gs) && (gs[j+3].sep == '-' || gs[j+3].sep == '.') {
		return 0 // a longer dashed or dotted id
	}
	if endsGlued(gs, k, j+3-k, r) {
		return 0
	}
	return j + 3 - k
}

func trunkAt(b []byte, gs []group, k int, r *run) int {
	g := gs[k]
	if b[g.start] != '0' || g.len() < 2 || g.len() > 8 {
		return 0
	}
	var sizes [3]int
	sizes[0] = g.len()
	total, L := g.len(), 1
	var sep byte
	for k+L < len(gs) {
		h := gs[k+L]
		if h.paren {
			break
		}
		if L == 1 {
			if !sepIn(h.sep, " -./") && !(g.paren && h.sep == ')') {
				break
			}
			sep = h.sep
		} else if h.sep != sep {
			break
		}
		if h.len() < 2 || h.len() > 8 || L == 6 {
			return 0
		}
		if L < 3 {
			sizes[L] = h.len()
		}
		total += h.len()
		L++
	}
	if L < 2 || (k > 0 && gs[k].sep == sep) || endsGlued(gs, k, L, r) {
		return 0
	}
	if L >= 3 && (sizes == [3]int{2, 2, 4} || sizes == [3]int{4, 2, 2}) {
		return 0 // a date
	}
	if b[g.start+1] == '0' {
		// "00" and a country code, which never starts with 0.
		cc := g.start + 2
		if g.len() == 2 {
			cc = gs[k+1].start
		}
		if b[cc] != '0' && total-2 >= 8 && total-2 <= 15 {
			return L
		}
		return 0
	}
	if total < 9 || total > 11 {
		return 0
	}
	return L
}

// phoneStart handles a '+' or '(' that may open a phone number.
func (s *scanner) phoneStart(b []byte, i int) int {
	if i+1 < len(b) && isDigit(b[i+1]) && s.boundary(b, i) {
		return s.numeric(b, i)
	}
	return i + 1
}
