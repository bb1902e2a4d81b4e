package resp

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// readerSetups are the ways each table case is fed: a roomy buffer that
// usually holds a whole value, and the smallest bufio buffer filled one
// byte per read, which drives every "need more input" and "does not fit in
// the buffer" path.
var readerSetups = []struct {
	name    string
	size    int
	oneByte bool
}{
	{"buffered", 4096, false},
	{"bytewise", 16, true},
}

func newReader(data string, size int, oneByte bool) *bufio.Reader {
	var src io.Reader = strings.NewReader(data)
	if oneByte {
		src = iotest.OneByteReader(src)
	}
	return bufio.NewReaderSize(src, size)
}

// copyToken returns t with its slices copied, since the decoder's are only
// valid until its next call.
func copyToken(t Token) Token {
	clone := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		return append([]byte{}, b...)
	}
	t.Payload, t.Format, t.Raw = clone(t.Payload), clone(t.Format), clone(t.Raw)
	return t
}

// describe writes a token compactly for table tests: the type byte, then
// the payload of a scalar or the length of a header, then " A", " P" and
// " C" for the Attr, Push and Complete flags. Streamed parts read
// "$<12" (begin, declared length), "…chunk" and "$>" (end).
func describe(t Token) string {
	var s string
	switch {
	case t.Part == PartBegin:
		s = fmt.Sprintf("%c<%d", t.Kind, t.Len)
		if t.Format != nil {
			s += ":" + string(t.Format)
		}
	case t.Part == PartChunk:
		s = "…" + string(t.Payload)
	case t.Part == PartEnd:
		s = fmt.Sprintf("%c>", t.Kind)
	case t.Kind.Aggregate() || t.Len < 0:
		s = fmt.Sprintf("%c%d", t.Kind, t.Len)
	case t.Kind == Verbatim:
		s = fmt.Sprintf("=%s:%s", t.Format, t.Payload)
	default:
		s = fmt.Sprintf("%c%s", t.Kind, t.Payload)
	}
	if t.Attr {
		s += " A"
	}
	if t.Push {
		s += " P"
	}
	if t.Complete {
		s += " C"
	}
	return s
}

// decodeReplies decodes data until the input ends or fails and returns the
// tokens, copied, and the error that stopped it (nil for a clean io.EOF).
func decodeReplies(data string, opts ReplyOptions, size int, oneByte bool) ([]Token, error) {
	d := NewReplyDecoder(newReader(data, size, oneByte), opts)
	var out []Token
	for {
		t, err := d.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, copyToken(t))
	}
}

// node is a decoded value as a tree, for assertions on real replies.
type node struct {
	kind   Kind
	str    string // scalar payload; a streamed bulk's chunks joined
	format string
	n      int64 // declared length
	elems  []*node
	attrs  []*node // the attribute that preceded the value, flattened
	push   bool
}

// tokenSource is a ReplyDecoder, or a wrapper that watches its tokens.
type tokenSource interface {
	Next() (Token, error)
	Depth() int
}

// readValue reads one top-level value (attributes included, attached to
// the value they precede) and checks that only its last token is Complete.
func readValue(d tokenSource) (*node, error) {
	var attrs []*node
	for {
		n, t, err := readNode(d)
		if err != nil {
			return nil, err
		}
		if n.kind == Attribute {
			attrs = append(attrs, n.elems...)
			continue
		}
		n.attrs = attrs
		if !t.Complete || d.Depth() != 0 {
			return nil, fmt.Errorf("value ended without Complete (depth %d)", d.Depth())
		}
		return n, nil
	}
}

// readNode reads one value and returns it with its last token.
func readNode(d tokenSource) (*node, Token, error) {
	t, err := d.Next()
	if err != nil {
		return nil, t, err
	}
	n := &node{kind: t.Kind, n: t.Len, push: t.Push, format: string(t.Format), str: string(t.Payload)}
	if t.Part == PartBegin {
		var sb strings.Builder
		for t.Part != PartEnd {
			if t, err = d.Next(); err != nil {
				return nil, t, err
			}
			sb.Write(t.Payload)
		}
		n.str = sb.String()
		return n, t, nil
	}
	if !t.Kind.Aggregate() || t.Len <= 0 {
		return n, t, nil
	}
	count := t.Len
	if t.Kind == Map || t.Kind == Attribute {
		count *= 2
	}
	last := t
	for i := int64(0); i < count; i++ {
		e, lt, err := readNode(d)
		if err != nil {
			return nil, lt, err
		}
		if e.kind == Attribute { // annotates the next element, not counted
			i--
			continue
		}
		n.elems = append(n.elems, e)
		last = lt
	}
	return n, last, nil
}

// mapOf returns a map or a flat key/value array as Go strings of its
// scalar values.
func mapOf(t *testing.T, n *node) map[string]*node {
	t.Helper()
	if len(n.elems)%2 != 0 {
		t.Fatalf("%v with %d elements is not a map", n.kind, len(n.elems))
	}
	m := make(map[string]*node)
	for i := 0; i < len(n.elems); i += 2 {
		m[n.elems[i].str] = n.elems[i+1]
	}
	return m
}

func newBufReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, 64) }
