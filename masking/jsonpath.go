package masking

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// JSONPathRule masks the values a JSON path selects in a JSON document
// masked whole (an HTTP body: Masker.JSON), whatever the detectors find
// in them; an object or an array selected is replaced whole. Paths are a
// subset of JSONPath (RFC 9535): the root "$", then ".name" or
// "['name']" for a member, "[N]" for an element, ".*" or "[*]" for every
// member or element, and "..name" for a member at any depth, as in
// "$.data[*].email" or "$..password". Names match exactly.
type JSONPathRule struct {
	Path     string   `yaml:"path"`
	Strategy Strategy `yaml:"strategy"`
	Keep     *int     `yaml:"keep,omitempty"`
}

// stepKind is one step of a compiled JSON path.
type stepKind uint8

const (
	stepName    stepKind = iota // .name
	stepIndex                   // [N]
	stepAny                     // .* or [*]
	stepDescend                 // ..name
)

type pathStep struct {
	kind  stepKind
	name  string
	index int
}

// jsonPath is a compiled JSONPathRule.
type jsonPath struct {
	steps []pathStep
	act   action
}

// parseJSONPath compiles a path of the supported subset.
func parseJSONPath(s string) ([]pathStep, error) {
	if !strings.HasPrefix(s, "$") {
		return nil, errors.New("must start with $")
	}
	var steps []pathStep
	rest := s[1:]
	for rest != "" {
		switch {
		case strings.HasPrefix(rest, ".."):
			name, n := pathName(rest[2:])
			if name == "" {
				return nil, fmt.Errorf("%q: .. must be followed by a name", s)
			}
			steps = append(steps, pathStep{kind: stepDescend, name: name})
			rest = rest[2+n:]
		case strings.HasPrefix(rest, ".*"):
			steps = append(steps, pathStep{kind: stepAny})
			rest = rest[2:]
		case rest[0] == '.':
			name, n := pathName(rest[1:])
			if name == "" {
				return nil, fmt.Errorf("%q: . must be followed by a name or *", s)
			}
			steps = append(steps, pathStep{kind: stepName, name: name})
			rest = rest[1+n:]
		case rest[0] == '[':
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, fmt.Errorf("%q: unclosed [", s)
			}
			in := rest[1:end]
			switch {
			case in == "*":
				steps = append(steps, pathStep{kind: stepAny})
			case len(in) >= 2 && (in[0] == '\'' || in[0] == '"') && in[len(in)-1] == in[0]:
				steps = append(steps, pathStep{kind: stepName, name: in[1 : len(in)-1]})
			default:
				n, err := strconv.Atoi(in)
				if err != nil || n < 0 {
					return nil, fmt.Errorf("%q: [%s] is not *, an index or a quoted name", s, in)
				}
				steps = append(steps, pathStep{kind: stepIndex, index: n})
			}
			rest = rest[end+1:]
		default:
			return nil, fmt.Errorf("%q: unexpected %q", s, rest[:1])
		}
	}
	if len(steps) == 0 {
		return nil, fmt.Errorf("%q selects the whole document (mask it with a detector instead)", s)
	}
	return steps, nil
}

// pathName reads a member name up to the next '.', '[' or the end.
func pathName(s string) (string, int) {
	n := strings.IndexAny(s, ".[")
	if n < 0 {
		n = len(s)
	}
	if s[:n] == "*" {
		return "", 0
	}
	return s[:n], n
}

// pathSeg is one step of the way to a value in a document: a member name
// or an element index.
type pathSeg struct {
	name  string
	index int // -1 for a member
}

// matchPath reports whether the way to a value matches steps.
func matchPath(steps []pathStep, at []pathSeg) bool {
	for len(steps) > 0 {
		st := steps[0]
		if st.kind == stepDescend {
			for i := range at {
				if at[i].index < 0 && at[i].name == st.name && matchPath(steps[1:], at[i+1:]) {
					return true
				}
			}
			return false
		}
		if len(at) == 0 {
			return false
		}
		switch st.kind {
		case stepName:
			if at[0].index >= 0 || at[0].name != st.name {
				return false
			}
		case stepIndex:
			if at[0].index != st.index {
				return false
			}
		}
		steps, at = steps[1:], at[1:]
	}
	return len(at) == 0
}

// maxJSONDepth bounds the nesting the path walk follows: a deeper document
// is malformed to it, and JSON masks it as free text.
const maxJSONDepth = 512

// maskJSONPaths appends src with the values the path rules select
// replaced. It returns Kept, Replaced or Malformed.
func (w *worker) maskJSONPaths(dst, src []byte) ([]byte, Outcome) {
	p := pathWalker{w: w, src: src, dst: dst, start: len(dst)}
	i := p.value(skipSpace(src, 0), 0)
	if i < 0 || skipSpace(src, i) != len(src) {
		return dst, Malformed
	}
	if !p.changed {
		return dst, Kept
	}
	return append(p.dst, src[p.pos:]...), Replaced
}

type pathWalker struct {
	w       *worker
	src     []byte
	dst     []byte
	start   int
	pos     int // src before pos is in dst
	at      []pathSeg
	changed bool
}

// value walks the value at i and returns the index after it, -1 when
// malformed.
func (p *pathWalker) value(i, depth int) int {
	src := p.src
	if i >= len(src) || depth > maxJSONDepth {
		return -1
	}
	end := -1
	switch c := src[i]; {
	case c == '{':
		end = p.object(i, depth)
	case c == '[':
		end = p.array(i, depth)
	case c == '"':
		end, _ = jsonStringEnd(src, i)
	case c == '-' || isDigit(c):
		end = i + 1
		for end < len(src) && (isDigit(src[end]) || src[end] == '.' || src[end] == 'e' || src[end] == 'E' || src[end] == '+' || src[end] == '-') {
			end++
		}
	case c == 't' || c == 'f' || c == 'n':
		end = i
		for end < len(src) && src[end] >= 'a' && src[end] <= 'z' {
			end++
		}
		if w := string(src[i:end]); w != "true" && w != "false" && w != "null" {
			return -1
		}
	}
	if end < 0 || len(p.at) == 0 {
		return end
	}
	for _, r := range p.w.e.paths {
		if matchPath(r.steps, p.at) {
			p.replace(i, end, r.act)
			break
		}
	}
	return end
}

// replace puts the masked form of src[i:end] in place of it.
func (p *pathWalker) replace(i, end int, a action) {
	p.dst = append(p.dst, p.src[p.pos:i]...)
	p.w.count(entColumn)
	if a.kind == kNull {
		p.dst = append(p.dst, "null"...)
	} else {
		p.dst = p.w.appendRuleJSON(p.dst, p.src[i:end], a)
	}
	p.pos, p.changed = end, true
}

func (p *pathWalker) object(i, depth int) int {
	src := p.src
	i = skipSpace(src, i+1)
	if i < len(src) && src[i] == '}' {
		return i + 1
	}
	for i < len(src) {
		if src[i] != '"' {
			return -1
		}
		kend, esc := jsonStringEnd(src, i)
		if kend < 0 {
			return -1
		}
		key := src[i+1 : kend-1]
		if esc {
			var ok bool
			if key, ok = appendUnescapeJSON(nil, key); !ok {
				return -1
			}
		}
		i = skipSpace(src, kend)
		if i >= len(src) || src[i] != ':' {
			return -1
		}
		p.at = append(p.at, pathSeg{name: string(key), index: -1})
		i = p.value(skipSpace(src, i+1), depth+1)
		p.at = p.at[:len(p.at)-1]
		if i < 0 {
			return -1
		}
		i = skipSpace(src, i)
		if i >= len(src) {
			return -1
		}
		switch src[i] {
		case '}':
			return i + 1
		case ',':
			i = skipSpace(src, i+1)
		default:
			return -1
		}
	}
	return -1
}

func (p *pathWalker) array(i, depth int) int {
	src := p.src
	i = skipSpace(src, i+1)
	if i < len(src) && src[i] == ']' {
		return i + 1
	}
	for n := 0; i < len(src); n++ {
		p.at = append(p.at, pathSeg{index: n})
		i = p.value(i, depth+1)
		p.at = p.at[:len(p.at)-1]
		if i < 0 {
			return -1
		}
		i = skipSpace(src, i)
		if i >= len(src) {
			return -1
		}
		switch src[i] {
		case ']':
			return i + 1
		case ',':
			i = skipSpace(src, i+1)
		default:
			return -1
		}
	}
	return -1
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// JSON masks a JSON document (an HTTP body, a message of a JSON stream):
// first the values the JSON path rules select, then the entities the
// detectors find in its strings and numbers; a null strategy makes a
// value JSON null. A document that is not JSON is masked as free text
// (Text), so nothing passes unmasked for being malformed. It returns b
// itself when nothing changed.
func (m *Masker) JSON(b []byte) []byte {
	e := m.e
	if len(b) == 0 || (!e.det.any && len(e.paths) == 0) {
		return b
	}
	w := e.pool.Get().(*worker)
	defer func() {
		w.flush()
		w.trim()
		e.pool.Put(w)
	}()
	cur := b
	if len(e.paths) > 0 {
		out, res := w.maskJSONPaths(make([]byte, 0, len(b)+64), b)
		switch res {
		case Malformed:
			return m.Text(b)
		case Replaced:
			cur = out
		}
	}
	if !e.det.any {
		return cur
	}
	out, res := w.maskJSON(make([]byte, 0, len(cur)+64), cur)
	switch res {
	case Malformed:
		return m.Text(cur)
	case Replaced:
		return out
	}
	return cur
}

// HasJSONPaths reports whether JSON path rules are configured.
func (m *Masker) HasJSONPaths() bool { return len(m.e.paths) > 0 }
