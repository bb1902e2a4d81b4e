package sqlrisk

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/airlock-gw/airlock/protocols"
)

// MaxJSONLLine is the longest input line RunJSONL accepts; a longer line is
// answered with an error line and skipped.
const MaxJSONLLine = 64 << 20

// jsonlInput is one input line of `airlock classify`.
type jsonlInput struct {
	Protocol string    `json:"protocol"`
	Command  *string   `json:"command"`
	Args     []string  `json:"args"`
	Method   string    `json:"method"`
	Path     string    `json:"path"`
	Body     *string   `json:"body"`
	Identity *identity `json:"identity"`
}

type identity struct {
	Name   string   `json:"name"`
	Groups []string `json:"groups"`
}

// jsonlOutput is one output line.
type jsonlOutput struct {
	Action     protocols.Action      `json:"action"`
	Risk       protocols.Risk        `json:"risk"`
	Rules      []string              `json:"rules"`
	Statements []protocols.Statement `json:"statements"`
}

type jsonlError struct {
	Error string `json:"error"`
}

// RunJSONL is the core of `airlock classify`. It reads JSON Lines
//
//	{"protocol":"postgres"|"mysql"|"redis","command":"…"}
//	{"protocol":"redis","args":["SET","k","v"]}
//	{"protocol":"http","method":"DELETE","path":"/v1/users/7"}
//	{"protocol":"http","method":"POST","path":"/graphql","body":"{\"query\":\"mutation { a }\"}"}
//
// (optionally with "identity":{"name":…,"groups":[…]} to evaluate the policy
// for a caller) and writes one line per input line, in order:
//
//	{"action":"allow","risk":"none","rules":[],"statements":[{"kind":"select","tables":["t"]}]}
//
// A malformed line is answered with {"error":"…"} on its line and
// processing continues. RunJSONL returns an error only when the input cannot
// be read or the output cannot be written.
func RunJSONL(in io.Reader, out io.Writer, c protocols.Classifier, p protocols.Policy) error {
	return runJSONL(in, out, c, p, MaxJSONLLine)
}

func runJSONL(in io.Reader, out io.Writer, c protocols.Classifier, p protocols.Policy, maxLine int) error {
	if c == nil || p == nil {
		return errors.New("classify: a classifier and a policy are required")
	}
	br := bufio.NewReaderSize(in, 1<<20)
	bw := bufio.NewWriterSize(out, 64<<10)
	for {
		line, tooLong, err := readLine(br, maxLine)
		if len(line) > 0 || tooLong || err == nil {
			var res any
			if tooLong {
				res = jsonlError{Error: fmt.Sprintf("line longer than %d bytes", maxLine)}
			} else {
				res = classifyLine(line, c, p)
			}
			b, merr := json.Marshal(res)
			if merr != nil {
				b, _ = json.Marshal(jsonlError{Error: "encode result: " + merr.Error()})
			}
			b = append(b, '\n')
			if _, werr := bw.Write(b); werr != nil {
				return fmt.Errorf("classify: write output: %w", werr)
			}
			// Flush whenever the input has nothing more buffered, so an
			// interactive caller sees each answer before sending more.
			if br.Buffered() == 0 {
				if ferr := bw.Flush(); ferr != nil {
					return fmt.Errorf("classify: write output: %w", ferr)
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			_ = bw.Flush()
			return fmt.Errorf("classify: read input: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("classify: write output: %w", err)
	}
	return nil
}

// readLine returns the next line without its end of line. tooLong reports
// a line past maxLine bytes, whose content is discarded. err is io.EOF after
// the last line (which may lack a newline).
func readLine(br *bufio.Reader, maxLine int) (line []byte, tooLong bool, err error) {
	for {
		frag, e := br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(frag) > maxLine+2 {
				tooLong, line = true, nil
			} else {
				line = append(line, frag...)
			}
		}
		if e == bufio.ErrBufferFull {
			continue
		}
		if e != nil && e != io.EOF {
			return nil, false, e
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if e == io.EOF {
			if len(line) == 0 && !tooLong {
				return nil, false, io.EOF
			}
			return line, tooLong, io.EOF
		}
		return line, tooLong, nil
	}
}

// classifyLine answers one input line.
func classifyLine(line []byte, c protocols.Classifier, p protocols.Policy) any {
	if len(bytes.TrimSpace(line)) == 0 {
		return jsonlError{Error: "empty line"}
	}
	var in jsonlInput
	if err := json.Unmarshal(line, &in); err != nil {
		return jsonlError{Error: "invalid JSON: " + err.Error()}
	}
	cmd := &protocols.Command{Protocol: protocols.Protocol(in.Protocol), Kind: "classify"}
	switch cmd.Protocol {
	case protocols.Postgres, protocols.MySQL:
		if len(in.Args) > 0 {
			return jsonlError{Error: fmt.Sprintf("args is only for redis; give %s commands as \"command\"", in.Protocol)}
		}
		if in.Command == nil {
			return jsonlError{Error: "missing \"command\""}
		}
		cmd.Text = *in.Command
	case protocols.Redis:
		switch {
		case len(in.Args) > 0:
			cmd.Args = in.Args
		case in.Command != nil:
			cmd.Text = *in.Command
		default:
			return jsonlError{Error: "missing \"command\" or \"args\""}
		}
	case protocols.HTTP:
		switch {
		case in.Method != "" || in.Path != "":
			if in.Method == "" || in.Path == "" {
				return jsonlError{Error: "http wants both \"method\" and \"path\""}
			}
			p := &protocols.Payload{Method: in.Method, Path: in.Path}
			if in.Body != nil {
				p.Body = []byte(*in.Body)
			}
			cmd.Payload, cmd.Text = p, in.Method+" "+in.Path
		case in.Command != nil:
			cmd.Text = *in.Command
		default:
			return jsonlError{Error: "missing \"method\" and \"path\" (or \"command\": \"METHOD /path\")"}
		}
	case "":
		return jsonlError{Error: "missing \"protocol\" (want postgres, mysql, redis or http)"}
	default:
		return jsonlError{Error: fmt.Sprintf("unknown protocol %q (want postgres, mysql, redis or http)", in.Protocol)}
	}
	var id protocols.Identity
	if in.Identity != nil {
		id = protocols.Identity{Name: in.Identity.Name, Groups: in.Identity.Groups}
	}
	cls := c.Classify(cmd)
	d := p.Decide(id, cls)
	rules := cls.Rules
	if rules == nil {
		rules = []string{}
	}
	stmts := cls.Statements
	if stmts == nil {
		stmts = []protocols.Statement{}
	}
	return jsonlOutput{Action: d.Action, Risk: cls.Risk, Rules: rules, Statements: stmts}
}
