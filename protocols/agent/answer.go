package agent

import (
	"errors"
	"fmt"
	"strings"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/engine"
)

// The states of a query's answer.
const (
	statusCompleted = "completed"
	statusRefused   = "refused"
	statusPending   = "pending_approval"
	statusFailed    = "failed"
)

// Answer is the outcome of one query, the same in the query API and in
// the MCP tool's structured content.
type Answer struct {
	Status     string `json:"status" jsonschema:"completed, refused, pending_approval or failed"`
	Connection string `json:"connection"`
	// Columns and Rows are the last statement's result set, masked; values
	// are in the database's text form, null for NULL.
	Columns []ColumnInfo `json:"columns,omitempty"`
	Rows    [][]*string  `json:"rows,omitempty"`
	// RowCount is the rows the last statement returned or, for a write,
	// affected; Returned how many of them are in Rows.
	RowCount  int64  `json:"row_count"`
	Returned  int    `json:"returned_rows"`
	Truncated bool   `json:"truncated" jsonschema:"true when rows were left out to stay within max_rows or max_bytes"`
	Tag       string `json:"command_tag,omitempty" jsonschema:"the database's completion tag, e.g. UPDATE 3"`
	// Reply is a Redis command's reply, masked, with its types: strings,
	// numbers, booleans, null, arrays, and maps as objects.
	Reply     any    `json:"reply,omitempty" jsonschema:"a Redis command's reply with its types: string, number, boolean, null, array, or object for a map"`
	ReplyType string `json:"reply_type,omitempty" jsonschema:"the Redis reply's type: bulk, simple, verbatim, integer, double, bignum, bool, null, array, set, push or map"`
	// Decision is the policy's verdict for a refused or pending query.
	Decision *DecisionInfo `json:"decision,omitempty"`
	Approval *ApprovalInfo `json:"approval,omitempty"`
	Error    *ErrorInfo    `json:"error,omitempty"`
	// Message says in a sentence what happened and what to do next.
	Message string `json:"message"`
}

// ColumnInfo is a result column: its name and its value family.
type ColumnInfo struct {
	Name string `json:"name"`
	Type string `json:"type" jsonschema:"text, json, bytes, number, bool, time, uuid, net, array or other"`
}

// DecisionInfo is why a query was refused or sent to review.
type DecisionInfo struct {
	Action string   `json:"action"`
	Risk   string   `json:"risk"`
	Rules  []string `json:"rules,omitempty"`
	Reason string   `json:"reason,omitempty"`
}

// ApprovalInfo names the approval request a query waits for.
type ApprovalInfo struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	ReviewURL string `json:"review_url" jsonschema:"the reviewers' page for this request"`
	WaitURL   string `json:"wait_url" jsonschema:"long-poll this (GET) for the decision"`
}

// ErrorInfo is the database's error, masked.
type ErrorInfo struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

var typeNames = [...]string{"other", "text", "json", "bytes", "number", "bool", "time", "uuid", "net", "array"}

func typeName(t protocols.ValueType) string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "other"
}

// collector builds an Answer's rows from a command's results, keeping the
// last statement's within the limits: a ColumnSink for session.Results and
// the observer of each statement's outcome.
type collector struct {
	maxRows, maxBytes int
	// redis: the rows are a Redis reply's (tabulated as the Redis
	// executor documents), rebuilt as Answer.Reply.
	redis bool

	cols      []ColumnInfo
	rows      [][]*string
	bytes     int
	open      bool // a result set is open: its outcome is yet to come
	truncated bool
	tag       string
	count     int64
}

// ForwardColumns implements session.ColumnSink: a statement's result set
// begins and replaces the last one's.
func (c *collector) ForwardColumns(cols []protocols.Column) error {
	c.reset()
	c.open = true
	c.cols = make([]ColumnInfo, len(cols))
	for i, col := range cols {
		c.cols[i] = ColumnInfo{Name: col.Name, Type: typeName(col.Type)}
	}
	return nil
}

func (c *collector) reset() {
	c.cols, c.rows, c.bytes, c.truncated, c.tag, c.count = nil, nil, 0, false, "", 0
}

// ForwardRow implements session.RowSink. Rows past the limits are left
// out; the statement still runs to its end, so that its outcome and its
// recording are whole.
func (c *collector) ForwardRow(values [][]byte, _ bool) error {
	if c.truncated {
		return nil
	}
	size := 2
	for _, v := range values {
		size += len(v) + 3
	}
	if len(c.rows) >= c.maxRows || c.bytes+size > c.maxBytes {
		c.truncated = true
		return nil
	}
	c.bytes += size
	row := make([]*string, len(values))
	for i, v := range values {
		if v != nil {
			s := string(v)
			row[i] = &s
		}
	}
	c.rows = append(c.rows, row)
	return nil
}

// outcome notes a statement's end; a statement without a result set
// replaces the last one's rows with none.
func (c *collector) outcome(r protocols.Result) {
	if !c.open {
		c.reset()
	}
	c.open = false
	c.tag, c.count = r.Tag, r.Rows
}

// answer builds the Answer of a command: its decision and the error
// session.Execute returned. A nil Answer with an error is not the query's
// outcome but the frontend's failure (the session must end, or the
// upstream is unreachable).
func (s *Server) answer(conn string, c *collector, dec protocols.Decision, err error, tool bool) (*Answer, error) {
	a := &Answer{Connection: conn}
	var ue engine.UpstreamError
	switch {
	case errors.As(err, &ue):
		a.Status = statusFailed
		a.Error = &ErrorInfo{Code: ue.UpstreamCode(), Message: ue.UpstreamMessage()}
		a.Message = fmt.Sprintf("The database answered with error %s: %s. The statement did not complete; fix it and send it again.",
			ue.UpstreamCode(), ue.UpstreamMessage())
		return a, nil
	case err != nil:
		return nil, err
	}
	if dec.Action != protocols.Allow {
		a.Decision = &DecisionInfo{Action: string(dec.Action), Risk: dec.Risk.String(), Rules: dec.Rules, Reason: dec.Reason}
		rules := strings.Join(dec.Rules, ", ")
		if rules == "" {
			rules = "policy"
		}
		if dec.ApprovalID != "" {
			a.Status = statusPending
			a.Decision.Action = string(protocols.Review)
			a.Decision.Reason = "approval required"
			a.Approval = &ApprovalInfo{ID: dec.ApprovalID, Status: "pending",
				ReviewURL: s.adminURL + "/approvals/" + dec.ApprovalID, WaitURL: "/v1/approvals/" + dec.ApprovalID + "?wait=30s"}
			wait := "GET " + a.Approval.WaitURL
			if tool {
				wait = "call wait_for_approval with approval_id \"" + dec.ApprovalID + "\""
			}
			a.Message = fmt.Sprintf("The statement needs a reviewer's approval (%s, risk %s) and did not run. Approval request %s is pending: "+
				"a reviewer approves it at %s or with \"airlock approvals approve %s\". To wait for the decision, %s; once it is approved, "+
				"send the identical statement again and it runs once.", rules, dec.Risk, dec.ApprovalID, a.Approval.ReviewURL, dec.ApprovalID, wait)
			return a, nil
		}
		a.Status = statusRefused
		a.Message = fmt.Sprintf("Refused by policy (%s, risk %s): the statement did not run, and sending it again will not change that; change the statement or ask an administrator.",
			rules, dec.Risk)
		return a, nil
	}
	a.Status = statusCompleted
	if c.redis {
		redisAnswer(a, c)
		return a, nil
	}
	a.Columns, a.Rows, a.Returned, a.Truncated, a.Tag, a.RowCount = c.cols, c.rows, len(c.rows), c.truncated, c.tag, c.count
	if a.Rows == nil && a.Columns != nil {
		a.Rows = [][]*string{}
	}
	switch {
	case a.Columns == nil:
		a.Message = fmt.Sprintf("Completed: %s.", orDefault(a.Tag, "done"))
	case a.Truncated:
		a.Message = fmt.Sprintf("Completed: %d rows, of which the first %d are shown (limited by max_rows or max_bytes); add a LIMIT or narrower columns to see the rest.", a.RowCount, a.Returned)
	default:
		a.Message = fmt.Sprintf("Completed: %d rows.", a.RowCount)
	}
	return a, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
