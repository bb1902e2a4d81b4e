package recording

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/airlock-gw/airlock/protocols"
)

// ReplayOptions shape a transcript.
type ReplayOptions struct {
	// JSON writes one JSON object per line instead of text (see FORMAT.md,
	// "Replay JSON").
	JSON bool
	// Key checks the recording's signatures while replaying.
	Key []byte
	// Location for times in the text form; nil is UTC.
	Location *time.Location
	// MaxCellWidth cuts wider table cells with "…"; 0 is 48, negative keeps
	// cells whole.
	MaxCellWidth int
	// Seals includes checkpoint frames in the text form.
	Seals bool
}

// tableFlushRows bounds how many rows a text table buffers to align its
// columns: a recording of "all" rows can hold millions, and replay streams.
const tableFlushRows = 500

// Replay writes a transcript of the recording read from r to w: the session
// header, then each command with its decision, result tables and summaries,
// then the verification verdict, which it also returns. Replay shows what it
// could read even when the recording is unfinished or altered; the verdict
// says which frames to trust. The error is for I/O failures only.
func Replay(w io.Writer, r io.Reader, opts ReplayOptions) (Report, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	var p printer
	if opts.JSON {
		p = &jsonPrinter{w: bw}
	} else {
		tp := &textPrinter{w: bw, loc: opts.Location, width: opts.MaxCellWidth, seals: opts.Seals}
		if tp.loc == nil {
			tp.loc = time.UTC
		}
		if tp.width == 0 {
			tp.width = 48
		}
		p = tp
	}
	rep, err := scan(r, opts.Key, p)
	if err != nil {
		return rep, err
	}
	if err := p.finish(rep); err != nil {
		return rep, fmt.Errorf("write transcript: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return rep, fmt.Errorf("write transcript: %w", err)
	}
	return rep, nil
}

// ReplayFile replays the recording at path.
func ReplayFile(w io.Writer, path string, opts ReplayOptions) (Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return Report{BadFrame: -1}, fmt.Errorf("open recording: %w", err)
	}
	defer f.Close()
	return Replay(w, f, opts)
}

type printer interface {
	visitor
	finish(rep Report) error
}

// textPrinter writes the human transcript. Every byte that came from the
// session passes through esc, so recorded data cannot drive the reader's
// terminal with escape sequences.
type textPrinter struct {
	w       *bufio.Writer
	loc     *time.Location
	width   int
	seals   bool
	day     string
	cols    []protocols.Column
	colTime time.Time
	table   [][]string
	shown   int64       // rows of the current result set shown
	pending bool        // a table is open
	pg      bool        // native type ids are PostgreSQL OIDs (Header.pgTypes)
	types   *pgtype.Map // made on the first binary value of a known type
	// protocol is the session's, whose dialect the native types are.
	protocol protocols.Protocol
}

const indent = "              " // width of "15:04:05.000  "

func (p *textPrinter) stamp(t time.Time) string {
	t = t.In(p.loc)
	if d := t.Format("2006-01-02"); d != p.day {
		p.day = d
		fmt.Fprintf(p.w, "-- %s\n", t.Format("Monday 2 January 2006 (MST)"))
	}
	return t.Format("15:04:05.000")
}

func (p *textPrinter) header(h Header) error {
	p.pg = h.pgTypes()
	p.protocol = h.Protocol
	id := h.Identity
	fmt.Fprintf(p.w, "session     %s\n", esc(h.SessionID))
	fmt.Fprintf(p.w, "identity    %s", esc(id.Name))
	if len(id.Groups) > 0 {
		fmt.Fprintf(p.w, " (groups: %s)", esc(strings.Join(id.Groups, ", ")))
	}
	if id.Method != "" {
		fmt.Fprintf(p.w, " via %s", esc(id.Method))
	}
	fmt.Fprintf(p.w, "\nconnection  %s (%s) from %s\n", esc(h.Connection), esc(string(h.Protocol)), esc(h.ClientAddr))
	fmt.Fprintf(p.w, "started     %s\n", h.Start.In(p.loc).Format("2006-01-02 15:04:05.000 MST"))
	fmt.Fprintf(p.w, "recorded by airlock %s on %s, format %d (%s), rows: %s", esc(orDash(h.AirlockVersion)), esc(orDash(h.Node)), h.Version, h.codec(), h.Rows)
	if h.Rows == RowsFirst {
		fmt.Fprintf(p.w, " %d per result", h.FirstRows)
	}
	if h.KeyID != "" {
		fmt.Fprintf(p.w, ", signed (key %s)", h.KeyID)
	}
	_, err := fmt.Fprintf(p.w, "\n\n")
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (p *textPrinter) line(t time.Time, label, text string) {
	fmt.Fprintf(p.w, "%s  %-9s %s\n", p.stamp(t), label, text)
}

func (p *textPrinter) frame(f *Frame) error {
	if f.Type != FrameRow && !f.Type.isSeal() {
		p.flushTable(false)
	}
	switch f.Type {
	case FrameCommand:
		c := f.Command
		label := c.Kind
		if label == "" {
			label = "command"
		}
		text := escMultiline(c.Text, indent+"          ")
		if c.Omitted > 0 {
			text += fmt.Sprintf(" …[%d more bytes not recorded]", c.Omitted)
		}
		p.line(f.Time, label, text+payloadText(c))
	case FrameDecision:
		d := f.Decision
		s := fmt.Sprintf("%s (risk %s", strings.ToUpper(esc(string(d.Action))), d.Risk)
		if len(d.Rules) > 0 {
			s += "; rules " + esc(strings.Join(d.Rules, ", "))
		}
		s += ")"
		if d.Reason != "" {
			s += ": " + esc(d.Reason)
		}
		p.line(f.Time, "decision", s)
		if d.ApprovalID != "" || d.Reviewer != "" {
			fmt.Fprintf(p.w, "%s          approval %s, reviewer %s\n", indent, esc(orDash(d.ApprovalID)), esc(orDash(d.Reviewer)))
		}
		p.decisionDetail(d)
	case FrameColumns:
		// The table's own header names the columns; a result set without
		// recorded rows gets a line of its own when it ends.
		p.cols, p.colTime, p.table, p.shown, p.pending = f.Columns, f.Time, p.table[:0], 0, true
	case FrameRow:
		row := make([]string, len(f.Row))
		for i, v := range f.Row {
			row[i] = p.cell(i, v)
		}
		p.table = append(p.table, row)
		p.shown++
		if len(p.table) >= tableFlushRows {
			p.flushTable(true)
		}
	case FrameResult:
		p.result(f)
	case FrameParams:
		p.line(f.Time, "params", p.paramsText(f.Params))
	case FrameReply:
		p.line(f.Time, "reply", p.replyText(f.Reply))
	case FrameExchange:
		p.line(f.Time, "exchange", p.exchangeText(f.Exchange))
	case FrameEnd:
		p.line(f.Time, "end", esc(orDash(f.End)))
	case FrameCheckpoint, FrameTrailer:
		if p.seals {
			p.line(f.Time, f.Type.String(), fmt.Sprintf("%d frames sealed", f.Seal.Count))
		}
	default:
		p.line(f.Time, "unknown", fmt.Sprintf("frame type %d, %d bytes", f.Type, len(f.Payload)))
	}
	return nil
}

// result prints a result set's summary, after a line naming its columns
// when none of its rows were recorded.
func (p *textPrinter) result(f *Frame) {
	if p.pending && p.shown == 0 && len(p.cols) > 0 {
		names := make([]string, len(p.cols))
		for i, c := range p.cols {
			names[i] = esc(c.Name)
		}
		p.line(p.colTime, "columns", strings.Join(names, ", "))
	}
	r := f.Result
	var s string
	if r.Error != "" {
		s = "ERROR"
		if r.Code != "" {
			s += " " + esc(r.Code)
		}
		s += ": " + escMultiline(r.Error, indent+"          ")
	} else {
		s = esc(orDash(r.Tag))
	}
	s += fmt.Sprintf(" · %d row%s", r.Rows, plural(r.Rows))
	if p.shown < r.Rows && p.pending {
		s += fmt.Sprintf(" (%d recorded)", p.shown)
	}
	s += " · " + r.Duration.Round(time.Microsecond).String()
	p.line(f.Time, "result", s)
	p.pending = false
}

func plural(n int64) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// cell renders one value of a result row: a binary value of a known
// PostgreSQL type in PostgreSQL's text form, any other as bytesCell does.
func (p *textPrinter) cell(i int, v Value) string {
	if !v.Null {
		if text, ok := p.binaryText(i, v); ok {
			return p.fit(esc(text), v.Omitted)
		}
	}
	return p.bytesCell(v)
}

// bytesCell renders a value's bytes: UTF-8 as text (control characters
// escaped), other bytes as \x hex, NULL as NULL, cut to the cell width.
func (p *textPrinter) bytesCell(v Value) string {
	if v.Null {
		return "NULL"
	}
	if utf8.Valid(v.Bytes) {
		return p.fit(esc(string(v.Bytes)), v.Omitted)
	}
	return p.fit(`\x`+fmt.Sprintf("%x", v.Bytes), v.Omitted)
}

// fit cuts s to the cell width and notes the bytes the writer left out.
func (p *textPrinter) fit(s string, omitted int64) string {
	if p.width > 0 && displayWidth(s) > p.width {
		s = truncateWidth(s, p.width-1) + "…"
	}
	if omitted > 0 {
		s += "[+" + strconv.FormatInt(omitted, 10) + "B]"
	}
	return s
}

// binaryText renders a whole binary-format value of a column whose
// PostgreSQL type is known.
func (p *textPrinter) binaryText(i int, v Value) (string, bool) {
	if i >= len(p.cols) || !p.cols[i].Binary {
		return "", false
	}
	return p.typedText(p.cols[i].Native, v)
}

// typedText renders a whole binary-format value of native type id native
// (0 when unknown) in the text form of the session's protocol: MySQL's, or
// PostgreSQL's when the recording's type ids are PostgreSQL OIDs. Other
// protocols' values stay bytes: pgx would read their ids as OIDs of
// unrelated types.
func (p *textPrinter) typedText(native uint32, v Value) (string, bool) {
	if native == 0 || v.Omitted > 0 {
		return "", false
	}
	if p.protocol == protocols.MySQL {
		return mysqlBinaryText(native, v.Bytes)
	}
	if !p.pg {
		return "", false
	}
	if p.types == nil {
		p.types = pgtype.NewMap()
	}
	return pgBinaryText(p.types, native, v.Bytes)
}

// payloadText renders a command's payload on a line of its own: the MCP
// tool called, or the HTTP method and path.
func payloadText(c *CommandRecord) string {
	var parts []string
	if c.Tool != "" {
		parts = append(parts, "tool "+esc(c.Tool))
	}
	if c.Method != "" || c.Path != "" {
		parts = append(parts, strings.TrimSpace(esc(c.Method)+" "+esc(c.Path)))
	}
	if len(parts) == 0 {
		return ""
	}
	return "\n" + indent + "          payload: " + strings.Join(parts, ", ")
}

// quoted is s as an SQL string literal, escaped for the terminal.
func quoted(s string) string {
	return "'" + strings.ReplaceAll(esc(s), "'", "''") + "'"
}

// flushTable prints the buffered rows as an aligned table.
func (p *textPrinter) flushTable(more bool) {
	if len(p.table) == 0 {
		return
	}
	n := len(p.cols)
	for _, r := range p.table {
		n = max(n, len(r))
	}
	widths := make([]int, n)
	for i := range n {
		if i < len(p.cols) {
			widths[i] = displayWidth(esc(p.cols[i].Name))
		}
		for _, r := range p.table {
			if i < len(r) {
				widths[i] = max(widths[i], displayWidth(r[i]))
			}
		}
	}
	row := func(cells []string, numeric func(int) bool) {
		p.w.WriteString(indent)
		for i := range n {
			var c string
			if i < len(cells) {
				c = cells[i]
			}
			if i > 0 {
				p.w.WriteString(" | ")
			}
			pad := strings.Repeat(" ", widths[i]-displayWidth(c))
			if numeric(i) {
				p.w.WriteString(pad + c)
			} else if i == n-1 {
				p.w.WriteString(c)
			} else {
				p.w.WriteString(c + pad)
			}
		}
		p.w.WriteString("\n")
	}
	names := make([]string, n)
	for i := range n {
		if i < len(p.cols) {
			names[i] = esc(p.cols[i].Name)
		}
	}
	row(names, func(int) bool { return false })
	p.w.WriteString(indent)
	for i, w := range widths {
		if i > 0 {
			p.w.WriteString("-+-")
		}
		p.w.WriteString(strings.Repeat("-", w))
	}
	p.w.WriteString("\n")
	for _, r := range p.table {
		row(r, func(i int) bool { return i < len(p.cols) && p.cols[i].Type == protocols.TypeNumber })
	}
	if more {
		fmt.Fprintf(p.w, "%s(table continues)\n", indent)
	}
	p.table = p.table[:0]
}

func (p *textPrinter) finish(rep Report) error {
	p.flushTable(false)
	_, err := fmt.Fprintf(p.w, "\nverification: %s\n", rep)
	return err
}

// paramsText renders a Bind's parameters: $1 = 'text', $2 = '42' (binary
// format of a known type), $3 = \x0000002a (binary, type unknown), NULL, or
// [16 bytes withheld].
func (p *textPrinter) paramsText(r *ParamsRecord) string {
	var b strings.Builder
	if r.Portal != "" {
		fmt.Fprintf(&b, "portal %s: ", esc(r.Portal))
	}
	if len(r.Values) == 0 {
		b.WriteString("no parameters")
	}
	for i, v := range r.Values {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d = ", i+1)
		switch {
		case v.Withheld:
			fmt.Fprintf(&b, "[%d bytes withheld]", v.Omitted)
			continue
		case v.Null:
			b.WriteString("NULL")
			continue
		case v.Binary:
			if s, ok := p.typedText(v.Native, v.Value); ok {
				b.WriteString(quoted(s))
			} else {
				b.WriteString("\\x" + hex.EncodeToString(v.Bytes))
			}
		default:
			b.WriteString(quoted(string(v.Bytes)))
		}
		if v.Omitted > 0 {
			fmt.Fprintf(&b, " …[%d more bytes not recorded]", v.Omitted)
		}
	}
	return b.String()
}
