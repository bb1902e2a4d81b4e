package masking

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"unicode/utf8"
)

// kind is a compiled Strategy.
type kind uint8

const (
	kRedact kind = iota
	kPartial
	kHash
	kNull
)

// action is a compiled strategy: what replaces a value or a span.
type action struct {
	kind kind
	keep int
}

func compileStrategy(s Strategy, keep *int) action {
	switch s {
	case Partial:
		return action{kind: kPartial, keep: keepOf(keep)}
	case Hash:
		return action{kind: kHash}
	case Null:
		return action{kind: kNull}
	}
	return action{kind: kRedact}
}

const (
	// hashPrefix marks a hashed value; hashHex is how many hex digits of
	// the HMAC follow (64 bits: collisions are negligible for joins).
	hashPrefix = "hash:"
	hashHex    = 16
	// columnPlaceholder replaces a value redacted by a column rule.
	columnPlaceholder = "[redacted]"
	// maxRetained bounds the buffers a worker keeps between values, so one
	// huge value does not pin its memory for the rest of the session.
	maxRetained = 1 << 20
)

// worker holds the per-goroutine state of masking: the scanner, the HMAC,
// scratch buffers and the metric tallies.
type worker struct {
	e      *engine
	sc     scanner
	mac    hash.Hash // HMAC-SHA256 under the hash key, made on first use
	sum    [32]byte
	tmp    []byte // decoded JSON strings
	tmp2   []byte // masked text before it is re-encoded
	quotes []Quote
	one    [1]span
	tally  [numEntities + 1]uint32
	dirty  bool
}

func (w *worker) count(e entity) {
	w.tally[e]++
	w.dirty = true
}

// flush adds the tallies to the pre-resolved counters: one atomic add per
// entity seen, never a lock per value.
func (w *worker) flush() {
	if !w.dirty {
		return
	}
	for e, n := range w.tally {
		if n == 0 {
			continue
		}
		if c := w.e.counters[e]; c != nil {
			c.Add(float64(n))
		}
		w.tally[e] = 0
	}
	w.dirty = false
}

// trim drops scratch buffers that grew past maxRetained.
func (w *worker) trim() {
	if cap(w.tmp) > maxRetained {
		w.tmp = nil
	}
	if cap(w.tmp2) > maxRetained {
		w.tmp2 = nil
	}
	if cap(w.sc.spans) > maxRetained/32 {
		w.sc.spans = nil
	}
}

// appendMasked appends src with its spans replaced. null reports a span
// whose strategy is null; in free text (freeText) null spans are redacted
// instead, since a message cannot be NULL.
func (w *worker) appendMasked(dst, src []byte, spans []span, freeText bool) (out []byte, null bool) {
	pos := 0
	for _, sp := range spans {
		w.count(sp.ent)
		if sp.ent == entColumn { // a column's value quoted by an error message
			dst = append(dst, src[pos:sp.start]...)
			dst = append(dst, columnPlaceholder...)
			pos = sp.end
			continue
		}
		a := w.e.act[sp.ent]
		if a.kind == kNull && !freeText {
			null = true
			continue
		}
		dst = append(dst, src[pos:sp.start]...)
		dst = w.appendSpan(dst, src[sp.start:sp.end], sp.ent, a)
		pos = sp.end
	}
	if null {
		return dst, true
	}
	return append(dst, src[pos:]...), false
}

// appendSpan appends the replacement of one detected entity.
func (w *worker) appendSpan(dst, v []byte, e entity, a action) []byte {
	switch a.kind {
	case kPartial:
		if e == entEmail {
			return appendEmailPartial(dst, v)
		}
		return appendPartial(dst, v, a.keep)
	case kHash:
		return w.appendHash(dst, v)
	}
	return append(dst, w.e.placeholder[e]...)
}

// appendRule appends the replacement of a whole value under a column rule
// (not null).
func (w *worker) appendRule(dst, v []byte, a action) []byte {
	switch a.kind {
	case kPartial:
		return appendPartial(dst, v, a.keep)
	case kHash:
		return w.appendHash(dst, v)
	}
	return append(dst, columnPlaceholder...)
}

// appendHash appends "hash:" and 16 hex digits of HMAC-SHA256(key, v).
func (w *worker) appendHash(dst, v []byte) []byte {
	if w.mac == nil { // created on first use: most result sets never hash
		w.mac = hmac.New(sha256.New, w.e.key)
	}
	w.mac.Reset()
	w.mac.Write(v)
	sum := w.mac.Sum(w.sum[:0])
	dst = append(dst, hashPrefix...)
	return hex.AppendEncode(dst, sum[:hashHex/2])
}

// isFormat reports separators that partial keeps in place, so a masked card
// or phone number keeps its shape. None of them needs quoting in JSON, a
// COPY line or (with the element quoted) an array literal.
func isFormat(r rune) bool {
	switch r {
	case ' ', '-', '.', '(', ')', '+', '/':
		return true
	}
	return false
}

// keepable reports runes partial may leave in clear: letters, digits and
// valid non-ASCII. Anything else in the kept tail (quotes, backslashes,
// commas, control bytes, invalid UTF-8) is starred too, so a replacement
// never needs escaping wherever it lands.
func keepable(r rune, size int) bool {
	if r < utf8.RuneSelf {
		return class[r]&(cAlpha|cDigit) != 0
	}
	return !(r == utf8.RuneError && size == 1)
}

// appendPartial appends v with every rune but the separators and the last
// keep characters replaced by '*'. keep is capped at half the characters,
// so a short value is never mostly revealed.
func appendPartial(dst, v []byte, keep int) []byte {
	total := 0
	for i := 0; i < len(v); {
		r, sz := utf8.DecodeRune(v[i:])
		if !isFormat(r) {
			total++
		}
		i += sz
	}
	keep = min(keep, total/2)
	hide := total - keep
	seen := 0
	for i := 0; i < len(v); {
		r, sz := utf8.DecodeRune(v[i:])
		switch {
		case isFormat(r):
			dst = append(dst, byte(r))
		case seen >= hide && keepable(r, sz):
			dst = append(dst, v[i:i+sz]...)
			seen++
		default:
			dst = append(dst, '*')
			seen++
		}
		i += sz
	}
	return dst
}

// appendEmailPartial keeps an address's first character and its domain:
// "jane.doe@example.com" becomes "j***@example.com".
func appendEmailPartial(dst, v []byte) []byte {
	at := len(v) - 1
	for at > 0 && v[at] != '@' {
		at--
	}
	r, sz := utf8.DecodeRune(v)
	if at > 0 && keepable(r, sz) && sz <= at {
		dst = append(dst, v[:sz]...)
	} else {
		dst = append(dst, '*')
	}
	dst = append(dst, "***"...)
	for _, c := range v[at:] {
		if c == '@' || c == '.' || c == '-' || c >= 0x80 || class[c]&(cAlpha|cDigit) != 0 {
			dst = append(dst, c)
		} else {
			dst = append(dst, '*')
		}
	}
	return dst
}
