package agent

import (
	"encoding/json"
	"fmt"
)

// redisAnswer fills a completed Redis command's answer: its reply, rebuilt
// with its types from the result set the Redis executor tabulated it into
// (its tag names the reply's type and how the rows hold it), so that the
// values are the masked ones, masked by field name as a table's columns
// are.
func redisAnswer(a *Answer, c *collector) {
	a.ReplyType, a.RowCount, a.Truncated = c.tag, c.count, c.truncated
	reply, elements, ok := redisReply(c.cols, c.rows, c.tag)
	if !ok {
		a.Message = "Completed, but the reply is larger than max_bytes and is left out; raise max_bytes (at most " +
			fmt.Sprint(maxBytesLimit) + ") or ask for less (HMGET, GETRANGE, LRANGE with a range)."
		return
	}
	a.Reply = reply
	switch c.tag {
	case "map":
		a.Returned = len(c.cols)
		a.Message = fmt.Sprintf("Completed: a map of %d fields.", len(c.cols))
	case "array", "set", "push":
		a.Returned = elements
		a.Message = fmt.Sprintf("Completed: %s of %d elements.", article(c.tag), elements)
		if c.truncated {
			a.Message = fmt.Sprintf("Completed: %s of %d elements, of which the first %d are shown (limited by max_rows or max_bytes); ask for a range to see the rest.",
				article(c.tag), c.count, elements)
		}
	default:
		a.Returned = 1
		a.Message = fmt.Sprintf("Completed: %s reply.", article(orDefault(c.tag, "a")))
	}
}

func article(kind string) string {
	switch kind {
	case "array", "integer":
		return "an " + kind
	case "a":
		return "a"
	}
	return "a " + kind
}

// redisReply rebuilds a reply from its result set; ok is false when the
// rows that held it were left out. elements counts an aggregate's
// elements shown.
func redisReply(cols []ColumnInfo, rows [][]*string, kind string) (reply json.RawMessage, elements int, ok bool) {
	var b []byte
	switch kind {
	case "map":
		if len(rows) == 0 {
			return nil, 0, false
		}
		b = append(b, '{')
		for i, col := range cols {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, col.Name)
			b = append(b, ':')
			b = appendTyped(b, rows[0][i], col.Type)
		}
		return append(b, '}'), len(cols), true
	case "array", "set", "push":
		b = append(b, '[')
		if len(cols) == 1 {
			for i, row := range rows {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendTyped(b, row[0], cols[0].Type)
			}
			return append(b, ']'), len(rows), true
		}
		if len(rows) == 0 {
			return nil, 0, false
		}
		for i, col := range cols {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendTyped(b, rows[0][i], col.Type)
		}
		return append(b, ']'), len(cols), true
	}
	if len(rows) == 0 || len(rows[0]) == 0 || len(cols) == 0 {
		return nil, 0, false
	}
	typ := cols[0].Type
	switch kind {
	case "integer", "double", "bignum":
		typ = "number"
	case "bool":
		typ = "bool"
	case "null":
		return json.RawMessage("null"), 0, true
	}
	return appendTyped(nil, rows[0][0], typ), 0, true
}

// appendTyped appends a value of a column of type typ as JSON: null for
// nil, numbers and booleans as such, JSON as itself, anything else (or a
// value masking made into text) as a string.
func appendTyped(b []byte, v *string, typ string) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	s := *v
	switch typ {
	case "number":
		if s != "" && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) && json.Valid([]byte(s)) {
			return append(b, s...)
		}
	case "bool":
		switch s {
		case "t":
			return append(b, "true"...)
		case "f":
			return append(b, "false"...)
		}
	case "json":
		if json.Valid([]byte(s)) {
			return append(b, s...)
		}
	}
	return appendString(b, s)
}

func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}
