package resp

// span is an argument's place in the decoder's buffer. Arguments are kept as
// offsets while the buffer may still grow, and become slices at the end.
type span struct{ start, end int }

// splitter splits an inline command line exactly as Redis's sdssplitargs
// (src/sds.c) does, since the server will split the relayed line that way
// and the gateway must judge the same arguments the server runs. Like the C
// code it treats the end of the line as a NUL byte; a NUL inside the line
// ends it too, which the request decoder rules out beforehand.
type splitter struct {
	line []byte
	pos  int
	out  []byte // unescaped arguments, appended
}

// at returns the byte at i, or 0 past the end, as reading a C string would.
func (s *splitter) at(i int) byte {
	if i < len(s.line) {
		return s.line[i]
	}
	return 0
}

// split appends each argument's bytes to s.out and its span to spans. It
// fails on an unterminated quote or a closing quote followed by anything
// but white space.
func (s *splitter) split(spans []span) ([]span, bool) {
	for {
		for s.at(s.pos) != 0 && isCSpace(s.at(s.pos)) {
			s.pos++
		}
		if s.at(s.pos) == 0 {
			return spans, true
		}
		start := len(s.out)
		if !s.token() {
			return spans, false
		}
		spans = append(spans, span{start, len(s.out)})
	}
}

// token reads one argument. Quotes may open anywhere in it ("a"b is not
// allowed, but a"b c" is the single argument "ab c").
func (s *splitter) token() bool {
	inDouble, inSingle := false, false
	for done := false; !done; {
		c := s.at(s.pos)
		switch {
		case inDouble:
			var ok bool
			if done, ok = s.doubleQuoted(c); !ok {
				return false
			}
		case inSingle:
			var ok bool
			if done, ok = s.singleQuoted(c); !ok {
				return false
			}
		default:
			switch c {
			case ' ', '\n', '\r', '\t', 0:
				done = true
			case '"':
				inDouble = true
			case '\'':
				inSingle = true
			default:
				s.out = append(s.out, c)
			}
		}
		if s.at(s.pos) != 0 {
			s.pos++
		}
	}
	return true
}

// doubleQuoted handles c inside "…", where \xHH and the C escapes apply and
// any other escaped byte stands for itself.
func (s *splitter) doubleQuoted(c byte) (done, ok bool) {
	switch {
	case c == '\\' && s.at(s.pos+1) == 'x' && isHex(s.at(s.pos+2)) && isHex(s.at(s.pos+3)):
		s.out = append(s.out, unhex(s.at(s.pos+2))<<4|unhex(s.at(s.pos+3)))
		s.pos += 3
	case c == '\\' && s.at(s.pos+1) != 0:
		s.pos++
		s.out = append(s.out, unescape(s.at(s.pos)))
	case c == '"':
		return true, s.closes()
	case c == 0:
		return false, false
	default:
		s.out = append(s.out, c)
	}
	return false, true
}

// singleQuoted handles c inside '…', where only \' is an escape.
func (s *splitter) singleQuoted(c byte) (done, ok bool) {
	switch {
	case c == '\\' && s.at(s.pos+1) == '\'':
		s.pos++
		s.out = append(s.out, '\'')
	case c == '\'':
		return true, s.closes()
	case c == 0:
		return false, false
	default:
		s.out = append(s.out, c)
	}
	return false, true
}

// closes reports whether the closing quote at s.pos is followed by white
// space or the end, as sdssplitargs requires.
func (s *splitter) closes() bool {
	next := s.at(s.pos + 1)
	return next == 0 || isCSpace(next)
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return c
}

// isCSpace is C's isspace in the "C" locale, which sdssplitargs uses to skip
// blanks between arguments (inside an argument only space, \t, \r and \n end
// it, so \v and \f are kept there).
func isCSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
