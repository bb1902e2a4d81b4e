package postgres

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/testenv"
)

// budgetApprover approves reviews while it has budget and denies them
// after; it counts the reviews it was asked for.
type budgetApprover struct {
	mu      sync.Mutex
	budget  int
	reviews []string
}

func (a *budgetApprover) Review(_ context.Context, req protocols.ReviewRequest, _ func(string)) (protocols.Decision, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reviews = append(a.reviews, req.Command.Kind+": "+req.Command.Text)
	d := req.Decision
	d.ApprovalID = fmt.Sprintf("req-%d", len(a.reviews))
	if a.budget > 0 {
		a.budget--
		d.Action, d.Reviewer = protocols.Allow, "reviewer"
		return d, nil
	}
	d.Action, d.Reason = protocols.Deny, "no approval left"
	return d, nil
}

func (a *budgetApprover) grant(n int) {
	a.mu.Lock()
	a.budget += n
	a.mu.Unlock()
}

func (a *budgetApprover) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.reviews)
}

// approvalSession starts a harness whose reviews a budgetApprover with one
// approval answers, creates table, and connects as alice. It returns the
// approver, a row counter for table and the connection.
func approvalSession(t *testing.T, table string) (*budgetApprover, func() int, *pgconn.PgConn) {
	t.Helper()
	ap := &budgetApprover{budget: 1}
	h := startHarness(t, func(o *Options) { o.Pipeline.Approver = ap })
	rows := countedTable(t, h, table)
	c, err := pgconn.Connect(context.Background(), h.url("alice", "alice-token", "main", ""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return ap, rows, c
}

// countedTable creates table (v int) in the harness's database and returns
// a function that counts its rows, read directly from PostgreSQL.
func countedTable(t *testing.T, h *harness, table string) func() int {
	t.Helper()
	admin := connect(t, testenv.PostgresURL(t, h.db))
	if _, err := admin.Exec(context.Background(), "CREATE TABLE "+table+" (v int)"); err != nil {
		t.Fatal(err)
	}
	return func() int {
		t.Helper()
		var n int
		if err := admin.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
}

// TestApprovedStatementRunsOncePerApproval: an approval covers one run of
// a prepared statement. A named statement prepared once and executed again
// is reviewed again at each further Bind; Describe and Close of it work as
// PostgreSQL's own would.
func TestApprovedStatementRunsOncePerApproval(t *testing.T) {
	table := "t_approved"
	ap, rows, c := approvalSession(t, table)
	ctx := context.Background()
	insert := "INSERT INTO " + table + " VALUES ($1) /*review*/"
	sd, err := c.Prepare(ctx, "ins", insert, nil) // Parse + Describe S: one review
	if err != nil {
		t.Fatalf("approved Prepare: %v", err)
	}
	if len(sd.ParamOIDs) != 1 {
		t.Fatalf("Describe of the approved statement: %d parameters", len(sd.ParamOIDs))
	}
	exec := func() error {
		return c.ExecPrepared(ctx, "ins", [][]byte{[]byte("7")}, nil, nil).Read().Err
	}
	if err := exec(); err != nil {
		t.Fatalf("first run of the approved statement: %v", err)
	}
	if rows() != 1 || ap.count() != 1 {
		t.Fatalf("after the approved run: %d rows, %d reviews", rows(), ap.count())
	}
	// The approval is spent: the next run is reviewed again, and denied.
	if err := exec(); pgCode(err) != "42501" || !strings.Contains(err.Error(), "no approval left") {
		t.Fatalf("second run on a spent approval: %v", err)
	}
	if rows() != 1 || ap.count() != 2 {
		t.Fatalf("after the denied run: %d rows, %d reviews", rows(), ap.count())
	}
	// The session goes on, and a new approval allows exactly one more run.
	ap.grant(1)
	if err := exec(); err != nil {
		t.Fatalf("run on a new approval: %v", err)
	}
	if err := exec(); pgCode(err) != "42501" {
		t.Fatalf("run after the new approval was spent: %v", err)
	}
	if rows() != 2 || ap.count() != 4 {
		t.Fatalf("after the second approval: %d rows, %d reviews", rows(), ap.count())
	}
	// Close reaches the statement; afterwards the name is free again.
	if err := c.Deallocate(ctx, "ins"); err != nil {
		t.Fatalf("Close of the approved statement: %v", err)
	}
	if err := exec(); pgCode(err) != "26000" {
		t.Fatalf("run after Close: %v", err)
	}
	ap.grant(1)
	if _, err := c.Prepare(ctx, "ins", insert, nil); err != nil {
		t.Fatalf("Prepare again after Close: %v", err)
	}
	if err := exec(); err != nil {
		t.Fatalf("run of the statement prepared again: %v", err)
	}
	if rows() != 3 {
		t.Fatalf("%d rows, want 3", rows())
	}
	// A simple Query destroys the unnamed statement, an approved one too.
	ap.grant(1)
	if _, err := c.Prepare(ctx, "", insert, nil); err != nil {
		t.Fatalf("approved unnamed Prepare: %v", err)
	}
	if err := c.Exec(ctx, "SELECT 1").Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.ExecPrepared(ctx, "", [][]byte{[]byte("8")}, nil, nil).Read().Err; pgCode(err) != "26000" {
		t.Fatalf("run of the unnamed statement after a Query: %v", err)
	}
	if rows() != 3 || ap.count() != 6 {
		t.Fatalf("after the unnamed statement: %d rows, %d reviews", rows(), ap.count())
	}
	// Statements that needed no approval run freely.
	if _, err := c.Prepare(ctx, "plain", "SELECT $1::int", nil); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := c.ExecPrepared(ctx, "plain", [][]byte{[]byte("1")}, nil, nil).Read().Err; err != nil {
			t.Fatal(err)
		}
	}
	if ap.count() != 6 {
		t.Fatalf("%d reviews, want 6", ap.count())
	}
}

// TestExecutesAreRecorded: every Execute is recorded with its statement's
// text, so a recording shows each run of a prepared statement, not only
// its Parse.
func TestExecutesAreRecorded(t *testing.T) {
	h := startHarness(t)
	ctx := context.Background()
	c := h.alice(t)
	if _, err := c.Prepare(ctx, "q", "SELECT $1::int AS v", nil); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1", "2", "3"} {
		if err := c.ExecPrepared(ctx, "q", [][]byte{[]byte(v)}, nil, nil).Read().Err; err != nil {
			t.Fatal(err)
		}
	}
	if err := c.ExecParams(ctx, "SELECT 'unnamed'", nil, nil, nil, nil).Read().Err; err != nil {
		t.Fatal(err)
	}
	if err := c.Deallocate(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)

	rec := h.lastRecording()
	got := strings.Join(rec.commands(), "\n")
	want := strings.Join([]string{
		"parse: SELECT $1::int AS v",
		"execute: SELECT $1::int AS v",
		"execute: SELECT $1::int AS v",
		"execute: SELECT $1::int AS v",
		"parse: SELECT 'unnamed'",
		"execute: SELECT 'unnamed'",
	}, "\n")
	if got != want {
		t.Fatalf("recorded commands:\n%s\nwant:\n%s", got, want)
	}
}

// atMasker masks any text holding an '@': enough to see which values the
// engine passes through masking (the masking package is tested on its own).
type atMasker struct{}

func (atMasker) Plan([]protocols.Column) protocols.RowMasker { return nil }
func (atMasker) Text(b []byte) []byte {
	if bytes.IndexByte(b, '@') >= 0 {
		return []byte("[masked]")
	}
	return b
}

type atMaskerSource struct{}

func (atMaskerSource) For(protocols.Identity) protocols.Masker { return atMasker{} }

// TestBindParametersAreRecorded: with recording.parameters on, each Bind's
// values are recorded: text as sent (masked for a masked caller), binary as
// bytes, or withheld when the caller is masked.
func TestBindParametersAreRecorded(t *testing.T) {
	for _, masked := range []bool{false, true} {
		t.Run(fmt.Sprintf("masked=%v", masked), func(t *testing.T) {
			h := startHarness(t, func(o *Options) {
				o.RecordParameters = true
				if masked {
					o.Connections["main"].Masking = atMaskerSource{}
				}
			})
			ctx := context.Background()
			c := h.alice(t)
			rr := c.ExecParams(ctx, "SELECT $1::text, $2::int4, $3::text, $4::text",
				[][]byte{[]byte("ada@example.com"), {0, 0, 0, 42}, nil, []byte("plain")}, nil, []int16{0, 1, 0, 0}, nil)
			if _, err := rr.Close(); err != nil {
				t.Fatal(err)
			}
			c.Close(ctx)
			rec := h.lastRecording()
			var got string
			rec.mu.Lock()
			for _, e := range rec.events {
				if strings.HasPrefix(e, "params ") {
					got = e
				}
			}
			rec.mu.Unlock()
			want := `params "": "ada@example.com" 0000002a NULL "plain"`
			if masked {
				want = `params "": "[masked]" withheld(4) NULL "plain"`
			}
			if got != want {
				t.Fatalf("recorded %q, want %q", got, want)
			}
		})
	}
}

// waitingApprover holds each review until its context ends, except the
// reviews it is told to approve at once; it reports each review's context
// error at entry.
type waitingApprover struct {
	mu      sync.Mutex
	approve int
	entered chan error
}

func (a *waitingApprover) Review(ctx context.Context, req protocols.ReviewRequest, _ func(string)) (protocols.Decision, error) {
	a.entered <- ctx.Err()
	a.mu.Lock()
	ok := a.approve > 0
	if ok {
		a.approve--
	}
	a.mu.Unlock()
	d := req.Decision
	if ok {
		d.Action, d.Reviewer = protocols.Allow, "reviewer"
		return d, nil
	}
	<-ctx.Done()
	return d, context.Cause(ctx)
}

// TestHoldAfterCancelledHold: a client's CancelRequest withdraws the held
// command, and the next held command in the same session is reviewed with
// a live context (checks share one until a hold is cancelled).
func TestHoldAfterCancelledHold(t *testing.T) {
	ap := &waitingApprover{entered: make(chan error, 4)}
	h := startHarness(t, func(o *Options) { o.Pipeline.Approver = ap })
	ctx := context.Background()
	c := h.alice(t)
	defer c.Close(ctx)
	for i := range 2 {
		if _, err := c.Exec(ctx, "SELECT 1").ReadAll(); err != nil {
			t.Fatalf("allowed command %d: %v", i, err)
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(ctx, "SELECT /*review*/ 1").ReadAll()
		done <- err
	}()
	if err := <-ap.entered; err != nil {
		t.Fatalf("first review began with a dead context: %v", err)
	}
	if err := c.CancelRequest(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; pgCode(err) != codeQueryCanceled {
		t.Fatalf("cancelled hold: want %s, got %v", codeQueryCanceled, err)
	}
	ap.mu.Lock()
	ap.approve = 1
	ap.mu.Unlock()
	res, err := c.Exec(ctx, "SELECT /*review*/ 2").ReadAll()
	if err != nil {
		t.Fatalf("second hold in the session: %v", err)
	}
	if got := string(res[0].Rows[0][0]); got != "2" {
		t.Fatalf("second hold returned %q", got)
	}
	if err := <-ap.entered; err != nil {
		t.Fatalf("second review began with a dead context: %v", err)
	}
}

// TestBindParameterTypesAreRecorded: a parameter's type is recorded with
// its value when the client named it in the Parse or a Describe of the
// statement told it.
func TestBindParameterTypesAreRecorded(t *testing.T) {
	h := startHarness(t, func(o *Options) { o.RecordParameters = true })
	ctx := context.Background()
	c := h.alice(t)
	// Parse without types, then Describe: the server's answer has them.
	if _, err := c.Prepare(ctx, "q", "SELECT $1::int4 + 1, $2::bool", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.ExecPrepared(ctx, "q", [][]byte{{0, 0, 0, 42}, {1}}, []int16{1, 1}, nil).Read().Err; err != nil {
		t.Fatal(err)
	}
	// Types in the Parse, no Describe of the statement.
	if err := c.ExecParams(ctx, "SELECT $1", [][]byte{{0, 0, 0, 0, 0, 0, 0, 7}}, []uint32{20}, []int16{1}, nil).Read().Err; err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	rec := h.lastRecording()
	var got []string
	rec.mu.Lock()
	for _, e := range rec.events {
		if strings.HasPrefix(e, "params ") {
			got = append(got, e)
		}
	}
	rec.mu.Unlock()
	want := []string{`params "": 0000002a(23) 01(16)`, `params "": 0000000000000007(20)`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("recorded %q, want %q", got, want)
	}
}

// TestRecordedTextIsMasked: a masked caller's statement text is recorded
// masked, as its results are, so a value typed into a WHERE clause does
// not reach the recording.
func TestRecordedTextIsMasked(t *testing.T) {
	h := startHarness(t, func(o *Options) { o.Connections["main"].Masking = atMaskerSource{} })
	ctx := context.Background()
	c := h.alice(t)
	if _, err := c.Exec(ctx, "SELECT 'ada@example.com' AS who").ReadAll(); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	rec := h.lastRecording()
	if got := strings.Join(rec.commands(), "\n"); got != "query: [masked]" {
		t.Fatalf("recorded commands: %q, want the masked text", got)
	}
}
