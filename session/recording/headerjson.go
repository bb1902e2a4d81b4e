package recording

import (
	"strconv"
	"unicode/utf8"
)

// appendHeaderJSON appends h's JSON exactly as json.Marshal encodes it (the
// same keys in the same order, the same omissions, the same escaping;
// TestHeaderJSONMatchesMarshal holds it to that) without reflection: the
// header is encoded at every session's start, and json.Marshal was most of
// what opening a recording cost beyond its system calls.
func appendHeaderJSON(b []byte, h *Header) ([]byte, error) {
	b = append(b, `{"session_id":`...)
	b = appendJSONString(b, h.SessionID)
	b = append(b, `,"identity":{"name":`...)
	b = appendJSONString(b, h.Identity.Name)
	if len(h.Identity.Groups) > 0 {
		b = append(b, `,"groups":[`...)
		for i, g := range h.Identity.Groups {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, g)
		}
		b = append(b, ']')
	}
	if h.Identity.Method != "" {
		b = append(b, `,"method":`...)
		b = appendJSONString(b, h.Identity.Method)
	}
	b = append(b, `},"connection":`...)
	b = appendJSONString(b, h.Connection)
	b = append(b, `,"protocol":`...)
	b = appendJSONString(b, string(h.Protocol))
	b = append(b, `,"client_addr":`...)
	b = appendJSONString(b, h.ClientAddr)
	b = append(b, `,"airlock_version":`...)
	b = appendJSONString(b, h.AirlockVersion)
	if h.Node != "" {
		b = append(b, `,"node":`...)
		b = appendJSONString(b, h.Node)
	}
	b = append(b, `,"start":"`...)
	b, err := h.Start.AppendText(b) // what Time.MarshalJSON writes, and refuses
	if err != nil {
		return nil, err
	}
	b = append(b, `","rows":`...)
	b = appendJSONString(b, string(h.Rows))
	if h.FirstRows != 0 {
		b = append(b, `,"first_rows":`...)
		b = strconv.AppendInt(b, int64(h.FirstRows), 10)
	}
	if h.KeyID != "" {
		b = append(b, `,"key_id":`...)
		b = appendJSONString(b, h.KeyID)
	}
	if h.Compression != "" {
		b = append(b, `,"compression":`...)
		b = appendJSONString(b, string(h.Compression))
	}
	return append(b, '}'), nil
}

// appendJSONString appends s as a JSON string the way encoding/json does
// by default: HTML-safe (<, > and & escaped), invalid UTF-8 as U+FFFD, and
// U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
