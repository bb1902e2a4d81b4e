package httpproxy

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/sqlrisk/mysql"
	"github.com/airlock-gw/airlock/sqlrisk/postgres"
	"github.com/airlock-gw/airlock/sqlrisk/rule"
)

// LLM provider connections (presets openai and anthropic): the request's
// prompts are masked before they leave (maskDocument, like any masked
// request body); the answer, already masked, is read here for the usage
// the provider reports (token metrics by identity and model) and for the
// tool calls the model returns, which are recorded, and whose SQL is
// classified like any statement and reported with what the connection's
// policy would decide. A caller that runs such a statement through
// Airlock has it decided again there.
//
// The wire formats read: OpenAI chat completions, responses and
// embeddings (https://platform.openai.com/docs/api-reference), streamed
// as server-sent chunks; Anthropic messages
// (https://docs.anthropic.com/en/api/messages) and their stream events.

// llmObserver follows one request to an LLM provider.
type llmObserver struct {
	p     *proxy
	x     *exchange
	model string // as requested; the answer's wins

	input, output int64
	calls         map[string]*toolCall // by index or id while streaming
	order         []string
}

// toolCall is one tool call of the model's answer.
type toolCall struct {
	name string
	args strings.Builder
}

func newLLMObserver(p *proxy, x *exchange, reqBody []byte) *llmObserver {
	o := &llmObserver{p: p, x: x, calls: map[string]*toolCall{}}
	var req struct {
		Model string `json:"model"`
	}
	_ = json.Unmarshal(reqBody, &req)
	o.model = req.Model
	return o
}

// usage is the usage object of either provider.
type usage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	InputTokens      int64 `json:"input_tokens"`
	OutputTokens     int64 `json:"output_tokens"`
}

func (o *llmObserver) addUsage(u *usage) {
	if u == nil {
		return
	}
	o.input = max(o.input, u.PromptTokens+u.InputTokens)
	o.output = max(o.output, u.CompletionTokens+u.OutputTokens)
}

// answer is the part of a provider's answer (or of a stream event) read.
type answer struct {
	Type  string `json:"type"`
	Model string `json:"model"`
	Usage *usage `json:"usage"`
	// OpenAI chat completions (message) and their chunks (delta).
	Choices []struct {
		Index   int          `json:"index"`
		Message *chatMessage `json:"message"`
		Delta   *chatMessage `json:"delta"`
	} `json:"choices"`
	// OpenAI responses.
	Output   []responseItem `json:"output"`
	Response *struct {
		Model  string         `json:"model"`
		Usage  *usage         `json:"usage"`
		Output []responseItem `json:"output"`
	} `json:"response"`
	// Anthropic messages and their stream events.
	Content      []anthropicBlock `json:"content"`
	Message      *answerMessage   `json:"message"`
	Index        int              `json:"index"`
	ContentBlock *anthropicBlock  `json:"content_block"`
	Delta        *struct {
		Type        string `json:"type"`
		PartialJSON string `json:"partial_json"`
	} `json:"delta"`
}

type answerMessage struct {
	Model string `json:"model"`
	Usage *usage `json:"usage"`
}

type chatMessage struct {
	ToolCalls []struct {
		Index    int    `json:"index"`
		ID       string `json:"id"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	} `json:"tool_calls"`
}

type responseItem struct {
	Type      string `json:"type"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type anthropicBlock struct {
	Type  string          `json:"type"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

func (o *llmObserver) call(key, name string) *toolCall {
	c := o.calls[key]
	if c == nil {
		c = &toolCall{}
		o.calls[key] = c
		o.order = append(o.order, key)
	}
	if name != "" {
		c.name = name
	}
	return c
}

// document reads an answer that was not streamed.
func (o *llmObserver) document(b []byte) { o.read(b, false) }

// event reads the data of one stream event.
func (o *llmObserver) event(data []byte) {
	if len(data) == 0 || string(data) == "[DONE]" {
		return
	}
	o.read(data, true)
}

func (o *llmObserver) read(b []byte, streamed bool) {
	var a answer
	if json.Unmarshal(b, &a) != nil {
		return
	}
	if a.Model != "" {
		o.model = a.Model
	}
	o.addUsage(a.Usage)
	if m := a.Message; m != nil {
		if m.Model != "" {
			o.model = m.Model
		}
		o.addUsage(m.Usage)
	}
	for _, ch := range a.Choices {
		msg := ch.Message
		if msg == nil {
			msg = ch.Delta
		}
		if msg == nil {
			continue
		}
		for i, tc := range msg.ToolCalls {
			key := fmt.Sprintf("choice%d/%d", ch.Index, tc.Index)
			if !streamed {
				key = fmt.Sprintf("choice%d/%d", ch.Index, i)
			}
			c := o.call(key, tc.Function.Name)
			c.args.WriteString(tc.Function.Arguments)
		}
	}
	items := a.Output
	if r := a.Response; r != nil {
		if r.Model != "" {
			o.model = r.Model
		}
		o.addUsage(r.Usage)
		if a.Type == "response.completed" {
			items = r.Output
		}
	}
	for i, it := range items {
		if it.Type == "function_call" {
			c := o.call(fmt.Sprintf("output%d", i), it.Name)
			c.args.Reset()
			c.args.WriteString(it.Arguments)
		}
	}
	for i, bl := range a.Content {
		if bl.Type == "tool_use" {
			c := o.call(fmt.Sprintf("block%d", i), bl.Name)
			c.args.Write(bl.Input)
		}
	}
	if bl := a.ContentBlock; bl != nil && bl.Type == "tool_use" {
		o.call(fmt.Sprintf("block%d", a.Index), bl.Name)
	}
	if d := a.Delta; d != nil && d.Type == "input_json_delta" {
		if c := o.calls[fmt.Sprintf("block%d", a.Index)]; c != nil {
			c.args.WriteString(d.PartialJSON)
		}
	}
}

// finish counts the usage and records the tool calls.
func (o *llmObserver) finish() {
	s := o.x.lease.s
	conn := s.Conn.Name
	model := "other"
	if slices.Contains(o.x.up.cfg.Models, o.model) {
		model = o.model
	}
	id := identityLabel(s.Info.Identity)
	if o.input > 0 {
		o.p.metrics.tokens.WithLabelValues(string(protocols.HTTP), conn, id, model, "input").Add(float64(o.input))
	}
	if o.output > 0 {
		o.p.metrics.tokens.WithLabelValues(string(protocols.HTTP), conn, id, model, "output").Add(float64(o.output))
	}
	for _, key := range o.order {
		o.report(o.calls[key])
	}
}

// maxToolArgs bounds a tool call's arguments as recorded.
const maxToolArgs = 4 << 10

// report records one tool call and classifies the SQL it carries.
func (o *llmObserver) report(c *toolCall) {
	s := o.x.lease.s
	args := c.args.String()
	stmts := sqlIn(args)
	risk := protocols.RiskNone
	text := fmt.Sprintf("tool call %s returned by the model: %s", c.name, cut(args, maxToolArgs))
	for _, st := range stmts {
		cls := toolAnalyzer(o.x.up.cfg.ToolSQL).Analyze(&protocols.Command{Protocol: protocols.Protocol(o.x.up.cfg.ToolSQL), Text: st.sql})
		if !st.named && slices.Contains(cls.Rules, rule.ParseError) {
			// Prose that starts like a statement ("select the best").
			continue
		}
		dec := protocols.Decision{Action: protocols.Allow, Risk: cls.Risk, Rules: cls.Rules}
		if s.Conn.Policy != nil {
			dec = s.Conn.Policy.Decide(s.Info.Identity, cls)
		}
		risk = max(risk, cls.Risk)
		text += fmt.Sprintf("\n-- SQL, not run here; as a statement: %s (risk %s, rules %s)", dec.Action, cls.Risk, strings.Join(cls.Rules, ", "))
		s.Log.Info("the model returned a tool call carrying SQL", "tool", c.name, "decision", dec)
	}
	o.p.metrics.toolCalls.WithLabelValues(string(protocols.HTTP), s.Conn.Name, risk.String()).Inc()
	cmd := &protocols.Command{Protocol: protocols.HTTP, Kind: "tool_call", Text: text}
	if err := s.Record(cmd, string(s.Text([]byte(text)))); err != nil {
		o.x.lease.broken.Store(true)
	}
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// sqlKeywords start the statements looked for in tool call arguments.
var sqlKeywords = []string{"select", "insert", "update", "delete", "drop", "create", "alter", "truncate", "grant",
	"revoke", "with", "copy", "merge", "call", "do", "execute", "replace", "set"}

// sqlKeys are argument names that hold SQL whatever it starts with.
var sqlKeys = []string{"sql", "query", "statement", "statements"}

// sqlArg is a string of a tool call's arguments that may be SQL; named
// when its key says so.
type sqlArg struct {
	sql   string
	named bool
}

// sqlIn returns the SQL statements a tool call's JSON arguments carry: a
// string under a key naming SQL, or one that starts with a SQL keyword.
func sqlIn(args string) []sqlArg {
	var v any
	if json.Unmarshal([]byte(args), &v) != nil {
		return nil
	}
	var out []sqlArg
	var walk func(key string, v any)
	walk = func(key string, v any) {
		switch v := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(k, v[k])
			}
		case []any:
			for _, e := range v {
				walk(key, e)
			}
		case string:
			named := slices.Contains(sqlKeys, strings.ToLower(key))
			if named || looksLikeSQL(v) {
				out = append(out, sqlArg{sql: v, named: named})
			}
		}
	}
	walk("", v)
	return out
}

func looksLikeSQL(v string) bool {
	t := strings.TrimSpace(v)
	first, _, _ := strings.Cut(strings.ToLower(t), " ")
	return slices.Contains(sqlKeywords, first) && strings.Contains(t, " ")
}

var (
	analyzersOnce sync.Once
	pgAnalyzer    *postgres.Analyzer
	myAnalyzer    *mysql.Analyzer
)

// toolAnalyzer returns the SQL analyzer of a dialect.
func toolAnalyzer(dialect string) interface {
	Analyze(*protocols.Command) *protocols.Classification
} {
	analyzersOnce.Do(func() { pgAnalyzer, myAnalyzer = postgres.New(), mysql.New() })
	if dialect == "mysql" {
		return myAnalyzer
	}
	return pgAnalyzer
}
