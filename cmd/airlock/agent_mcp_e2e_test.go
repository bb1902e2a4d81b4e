package main

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/airlock-gw/airlock/protocols/testenv"
)

// toolNames lists a session's tools and the connections its query tool
// offers.
func toolNames(t *testing.T, cs *mcp.ClientSession) (names []string, conns []any, tools map[string]*mcp.Tool) {
	t.Helper()
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tools = map[string]*mcp.Tool{}
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
		tools[tl.Name] = tl
	}
	slices.Sort(names)
	if q := tools["query"]; q != nil {
		schema := q.InputSchema.(map[string]any)
		conns = schema["properties"].(map[string]any)["connection"].(map[string]any)["enum"].([]any)
	}
	return names, conns, tools
}

// TestMCPEndpoint drives /mcp with the official Go SDK's client over real
// HTTP: each served protocol version, tools filtered by identity, a masked
// query, a refused COPY … TO PROGRAM, and a DROP held for approval that a
// reviewer approves with the CLI while wait_for_approval streams progress.
// The recording of the MCP session then replays every call.
func TestMCPEndpoint(t *testing.T) {
	t.Parallel()
	db := testenv.PostgresDB(t)
	seedShop(t, db)
	a := startAgents(t, db, "")

	for _, v := range []string{"2025-06-18", "2025-11-25", "2026-07-28"} {
		t.Run("version "+v, func(t *testing.T) {
			cs := a.mcpConnect(t, agentToken, v, nil)
			if got := cs.InitializeResult().ProtocolVersion; got != v {
				t.Fatalf("negotiated %s, want %s", got, v)
			}
			names, conns, _ := toolNames(t, cs)
			if !slices.Equal(names, []string{"describe_schema", "list_connections", "query", "wait_for_approval"}) || !slices.Equal(conns, []any{"main"}) {
				t.Fatalf("tools %v on connections %v", names, conns)
			}
			res, out := callTool(t, cs, "query", map[string]any{"connection": "main", "sql": "SELECT name, email FROM customers ORDER BY id"})
			text := resultText(res)
			if res.IsError || out["status"] != "completed" || !strings.Contains(text, "Ada | a***@example.com") || strings.Contains(text, "ada@example.com") {
				t.Fatalf("masked query: %v %v\n%s", res.IsError, out, text)
			}
			rows := out["rows"].([]any)
			if len(rows) != 3 || rows[0].([]any)[1] != "a***@example.com" || rows[2].([]any)[1] != nil {
				t.Fatalf("structured rows %v", rows)
			}
		})
	}

	t.Run("tools follow the identity", func(t *testing.T) {
		_, conns, tools := toolNames(t, a.mcpConnect(t, devToken, "", nil))
		if !slices.Equal(conns, []any{"main", "ops"}) {
			t.Fatalf("dev's connections %v", conns)
		}
		for name, want := range map[string][2]bool{"list_connections": {true, false}, "describe_schema": {true, false},
			"wait_for_approval": {true, false}, "query": {false, true}} {
			an := tools[name].Annotations
			if an == nil || an.ReadOnlyHint != want[0] || an.DestructiveHint == nil || *an.DestructiveHint != want[1] || tools[name].OutputSchema == nil {
				t.Errorf("%s: annotations %+v, output schema %v", name, an, tools[name].OutputSchema != nil)
			}
		}
		names, _, _ := toolNames(t, a.mcpConnect(t, guestToken, "", nil))
		if !slices.Equal(names, []string{"list_connections"}) {
			t.Fatalf("an identity without connections sees %v", names)
		}
		cs := a.mcpConnect(t, agentToken, "", nil)
		res, _ := callTool(t, cs, "query", map[string]any{"connection": "ops", "sql": "SELECT 1"})
		// The tool's schema names only the usable connections, so the SDK
		// refuses the call before it reaches Airlock's own check.
		if !res.IsError || !strings.Contains(resultText(res), "ops does not equal any of: [main]") {
			t.Fatalf("a forbidden connection: %s", resultText(res))
		}
	})

	t.Run("held, approved from the CLI, run once", func(t *testing.T) {
		var mu sync.Mutex
		var progress []string
		gotProgress := make(chan struct{}, 1)
		cs := a.mcpConnect(t, agentToken, "2025-11-25", &mcp.ClientOptions{
			ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
				mu.Lock()
				progress = append(progress, r.Params.Message)
				mu.Unlock()
				select {
				case gotProgress <- struct{}{}:
				default:
				}
			}})
		if res, out := callTool(t, cs, "describe_schema", map[string]any{"connection": "main"}); res.IsError || !strings.Contains(resultText(res), "email text -- contact address") {
			t.Fatalf("schema: %v %s", out, resultText(res))
		}
		res, out := callTool(t, cs, "query", map[string]any{"connection": "main", "sql": "COPY customers TO PROGRAM 'cat > /tmp/airlock-e2e'"})
		if !res.IsError || out["status"] != "refused" || !strings.Contains(resultText(res), "reach.program") {
			t.Fatalf("COPY … TO PROGRAM: %v %s", out, resultText(res))
		}
		drop := map[string]any{"connection": "main", "sql": "DROP TABLE scratch"}
		res, out = callTool(t, cs, "query", drop)
		approval, _ := out["approval"].(map[string]any)
		if res.IsError || out["status"] != "pending_approval" || approval == nil || !strings.Contains(resultText(res), "wait_for_approval") {
			t.Fatalf("DROP: %v %s", out, resultText(res))
		}
		id := approval["id"].(string)
		approved := make(chan struct{})
		go func() {
			defer close(approved)
			select {
			case <-gotProgress:
			case <-time.After(30 * time.Second):
				t.Error("no progress notification while waiting")
			}
			approvalsCLI(t, a.instance, "approve", id)
		}()
		params := &mcp.CallToolParams{Name: "wait_for_approval", Arguments: map[string]any{"approval_id": id, "timeout_seconds": 60}}
		params.SetProgressToken("wait-1")
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		wres, err := cs.CallTool(ctx, params)
		<-approved
		if err != nil {
			t.Fatal(err)
		}
		wout, _ := wres.StructuredContent.(map[string]any)
		if wres.IsError || wout["status"] != "approved" || !strings.Contains(resultText(wres), "identical statement") {
			t.Fatalf("wait_for_approval: %v %s", wres.StructuredContent, resultText(wres))
		}
		mu.Lock()
		if len(progress) == 0 || !strings.Contains(progress[0], "approval request "+id+" is pending") {
			t.Errorf("progress %q", progress)
		}
		mu.Unlock()
		if !tableExists(t, db, "scratch") {
			t.Fatal("the DROP ran before it was sent again")
		}
		if res, out := callTool(t, cs, "query", drop); res.IsError || out["status"] != "completed" || out["command_tag"] != "DROP TABLE" {
			t.Fatalf("the approved DROP: %v %s", out, resultText(res))
		}
		if tableExists(t, db, "scratch") {
			t.Fatal("the approved DROP did not run")
		}
		if err := cs.Close(); err != nil {
			t.Fatal(err)
		}

		// The MCP session's session on main is recorded: every call, the
		// decisions, and only masked values.
		a.stop()
		var replay string
		for _, f := range recordings(t, a.instance) {
			out, code := airlockCmd(t, a.instance, "replay", strings.TrimSuffix(f[strings.LastIndex(f, "/")+1:], ".alrec"))
			if code != 0 {
				t.Fatalf("replay: %s", out)
			}
			if strings.Contains(out, "mcp:wait_for_approval") {
				replay = out
			}
		}
		if replay == "" {
			t.Fatal("no recording holds the MCP session")
		}
		for _, want := range []string{"identity    agent", "mcp:describe_schema", "SELECT n.nspname", "mcp:query", "COPY customers TO PROGRAM",
			"reach.program", "DROP TABLE scratch", "schema.drop", "mcp:wait_for_approval", "APPROVAL APPROVED", "DROP TABLE"} {
			if !strings.Contains(replay, want) {
				t.Errorf("the replay lacks %q:\n%s", want, replay)
			}
		}
		if strings.Contains(replay, "ada@example.com") {
			t.Errorf("an unmasked value reached the recording:\n%s", replay)
		}
	})
}
