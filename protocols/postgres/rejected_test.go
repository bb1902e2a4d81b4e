package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// closeAfterError sends, in one pipeline, a Parse that fails and a Close of
// the statement name: PostgreSQL skips the Close. It returns the code of
// the pipeline's error.
func closeAfterError(t *testing.T, c *pgconn.PgConn, name string) string {
	t.Helper()
	ctx := context.Background()
	p := c.StartPipeline(ctx)
	p.SendPrepare("", "SELEC 1", nil)
	p.SendDeallocate(name)
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	var code string
	for {
		r, err := p.GetResults()
		if err != nil && code == "" {
			code = pgCode(err)
		}
		if _, ok := r.(*pgconn.PipelineSync); ok {
			break
		}
		if r == nil && err == nil {
			break
		}
	}
	if err := p.Close(); err != nil && code == "" {
		code = pgCode(err)
	}
	return code
}

// TestRejectedParseAndSkippedClose: when PostgreSQL rejects a Parse (the
// name is taken) or skips a Close (an earlier error in the pipeline), the
// statement name keeps its meaning, and the recording of each later run
// names the statement that really ran.
func TestRejectedParseAndSkippedClose(t *testing.T) {
	h := startHarness(t)
	ctx := context.Background()
	c := h.alice(t)
	first := "SELECT 'first'::text AS v"
	if _, err := c.Prepare(ctx, "q", first, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Prepare(ctx, "q", "SELECT 'second'::text AS v", nil); pgCode(err) != "42P05" {
		t.Fatalf("second Parse of a name: want 42P05, got %v", err)
	}
	run := func() string {
		t.Helper()
		res := c.ExecPrepared(ctx, "q", nil, nil, nil).Read()
		if res.Err != nil {
			t.Fatalf("run of q: %v", res.Err)
		}
		return string(res.Rows[0][0])
	}
	if got := run(); got != "first" {
		t.Fatalf("q ran %q", got)
	}
	if code := closeAfterError(t, c, "q"); code != "42601" {
		t.Fatalf("pipeline error: %q", code)
	}
	if got := run(); got != "first" {
		t.Fatalf("after the skipped Close q ran %q", got)
	}
	c.Close(ctx)

	rec := h.lastRecording()
	var execs []string
	for _, l := range rec.commands() {
		if strings.HasPrefix(l, "execute: ") {
			execs = append(execs, l)
		}
	}
	want := "execute: " + first
	if len(execs) != 2 || execs[0] != want || execs[1] != want {
		t.Fatalf("recorded executes %q, want two of %q", execs, want)
	}
}

// TestSkippedExecutesAreRecordedAsNotRun: the Executes PostgreSQL skips
// after an error in their pipeline are recorded as sent, each followed by
// a result that says it did not run.
func TestSkippedExecutesAreRecordedAsNotRun(t *testing.T) {
	h := startHarness(t)
	// The error comes at Bind (the constant is folded when the unnamed
	// statement is planned), so it is the result of the first Execute.
	got := runPipeline(t, h, "SELECT 1/0", "SELECT 'skipped one'", "SELECT 'skipped two'")
	want := []string{
		"command execute: SELECT 1/0",
		"command execute: SELECT 'skipped one'",
		"command execute: SELECT 'skipped two'",
		"result 22012 division by zero",
		"result  " + skippedExecute,
		"result  " + skippedExecute,
		"result SELECT 1",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("recorded:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// An error at Execute is that Execute's result; the rest did not run.
	got = runPipeline(t, h, "SELECT 1/(random()*0)::int", "SELECT 'skipped'")
	want = []string{
		"command execute: SELECT 1/(random()*0)::int",
		"command execute: SELECT 'skipped'",
		"result 22012 division by zero",
		"result  " + skippedExecute,
		"result SELECT 1",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("recorded:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// runPipeline runs the statements in one pipeline of a new session, then
// one more query, and returns the executes and results that session
// recorded.
func runPipeline(t *testing.T, h *harness, stmts ...string) []string {
	t.Helper()
	ctx := context.Background()
	c := h.alice(t)
	p := c.StartPipeline(ctx)
	for _, q := range stmts {
		p.SendQueryParams(q, nil, nil, nil, nil)
	}
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	for {
		r, err := p.GetResults()
		if _, ok := r.(*pgconn.PipelineSync); ok || r == nil && err == nil {
			break
		}
		if rr, ok := r.(*pgconn.ResultReader); ok {
			rr.Close()
		}
	}
	_ = p.Close()
	if err := c.Exec(ctx, "SELECT 'after'").Close(); err != nil {
		t.Fatalf("session after the pipeline: %v", err)
	}
	c.Close(ctx)
	rec := h.lastRecording()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var got []string
	for _, e := range rec.events {
		if strings.HasPrefix(e, "command execute") || strings.HasPrefix(e, "result") {
			got = append(got, e)
		}
	}
	return got
}

// TestApprovedNameKeptThroughRejectsAndSkips: a named statement an approval
// let through cannot be redefined (42P05, as PostgreSQL answers), and a
// Close of it that PostgreSQL skips leaves it in place and still checked,
// under its own name and under its private one.
func TestApprovedNameKeptThroughRejectsAndSkips(t *testing.T) {
	table := "t_approved_kept"
	ap, rows, c := approvalSession(t, table)
	ctx := context.Background()
	if _, err := c.Prepare(ctx, "ins", "INSERT INTO "+table+" VALUES (1) /*review*/", nil); err != nil {
		t.Fatalf("approved Prepare: %v", err)
	}
	if _, err := c.Prepare(ctx, "ins", "SELECT 1", nil); pgCode(err) != "42P05" || !strings.Contains(err.Error(), `"ins"`) {
		t.Fatalf("redefining the approved name: want 42P05 naming it, got %v", err)
	}
	if code := closeAfterError(t, c, "ins"); code != "42601" {
		t.Fatalf("pipeline error: %q", code)
	}
	// A name a plain statement holds is not taken over by an approved one.
	if _, err := c.Prepare(ctx, "plain", "SELECT 'plain'::text", nil); err != nil {
		t.Fatal(err)
	}
	ap.grant(1)
	if _, err := c.Prepare(ctx, "plain", "INSERT INTO "+table+" VALUES (2) /*review*/", nil); pgCode(err) != "42P05" {
		t.Fatalf("approved Parse of a taken name: want 42P05, got %v", err)
	}
	if res := c.ExecPrepared(ctx, "plain", nil, nil, nil).Read(); res.Err != nil || string(res.Rows[0][0]) != "plain" {
		t.Fatalf("the plain statement after the rejected Parse: %v %v", res.Err, res.Rows)
	}
	// The approved statement is still there, and its one run is left.
	if err := c.ExecPrepared(ctx, "ins", nil, nil, nil).Read().Err; err != nil {
		t.Fatalf("approved run after the skipped Close: %v", err)
	}
	if rows() != 1 || ap.count() != 2 {
		t.Fatalf("after the approved run: %d rows, %d reviews", rows(), ap.count())
	}
	// Spent: another run under either name is reviewed, and denied.
	if err := c.ExecPrepared(ctx, "ins", nil, nil, nil).Read().Err; pgCode(err) != "42501" {
		t.Fatalf("second run: want 42501, got %v", err)
	}
	res := c.ExecParams(ctx, "SELECT name FROM pg_prepared_statements WHERE name LIKE 'airlock_approved_%'", nil, nil, nil, nil).Read()
	if res.Err != nil || len(res.Rows) != 1 {
		t.Fatalf("private statement: %v, %d rows", res.Err, len(res.Rows))
	}
	private := string(res.Rows[0][0])
	if err := c.ExecPrepared(ctx, private, nil, nil, nil).Read().Err; pgCode(err) != "42501" {
		t.Fatalf("run under the private name: want 42501, got %v", err)
	}
	// After a Close that ran, too: the private name stays checked.
	if err := c.Deallocate(ctx, "ins"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.ExecPrepared(ctx, private, nil, nil, nil).Read().Err; pgCode(err) != "42501" {
		t.Fatalf("run under the private name after Close: want 42501, got %v", err)
	}
	if rows() != 1 {
		t.Fatalf("%d rows, want 1", rows())
	}
}
