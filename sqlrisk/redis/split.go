package redis

import (
	"errors"
	"strings"
)

// ErrUnbalanced is returned by SplitArgs for an unterminated quote.
var ErrUnbalanced = errors.New("unbalanced quotes in redis command line")

// SplitArgs splits a command line the way redis-cli does (sdssplitargs):
// arguments are separated by white space; "…" quotes support \n \r \t \b \a
// \\ \" and \xHH escapes; '…' quotes support \' only; a closing quote must
// be followed by white space or the end. Written by hand because go-redis
// has no public splitter and the JSON Lines input of `airlock classify`
// carries Redis commands as text.
func SplitArgs(line string) ([]string, error) {
	var out []string
	i := 0
	for {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i >= len(line) {
			return out, nil
		}
		var b strings.Builder
		inDQ, inSQ := false, false
		for done := false; !done; {
			if i >= len(line) {
				if inDQ || inSQ {
					return nil, ErrUnbalanced
				}
				break
			}
			c := line[i]
			switch {
			case inDQ:
				switch {
				case c == '\\' && i+3 < len(line) && line[i+1] == 'x' && isHex(line[i+2]) && isHex(line[i+3]):
					b.WriteByte(unhex(line[i+2])<<4 | unhex(line[i+3]))
					i += 3
				case c == '\\' && i+1 < len(line):
					i++
					switch line[i] {
					case 'n':
						b.WriteByte('\n')
					case 'r':
						b.WriteByte('\r')
					case 't':
						b.WriteByte('\t')
					case 'b':
						b.WriteByte('\b')
					case 'a':
						b.WriteByte('\a')
					default:
						b.WriteByte(line[i])
					}
				case c == '"':
					if i+1 < len(line) && !isSpace(line[i+1]) {
						return nil, ErrUnbalanced
					}
					done = true
				default:
					b.WriteByte(c)
				}
			case inSQ:
				switch {
				case c == '\\' && i+1 < len(line) && line[i+1] == '\'':
					i++
					b.WriteByte('\'')
				case c == '\'':
					if i+1 < len(line) && !isSpace(line[i+1]) {
						return nil, ErrUnbalanced
					}
					done = true
				default:
					b.WriteByte(c)
				}
			default:
				switch {
				case isSpace(c):
					done = true
				case c == '"':
					inDQ = true
				case c == '\'':
					inSQ = true
				default:
					b.WriteByte(c)
				}
			}
			i++
		}
		out = append(out, b.String())
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f'
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
