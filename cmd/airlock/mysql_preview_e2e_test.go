package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestMySQLPreviewOfHeldDelete: a DELETE held for review on a MySQL
// connection shows the optimizer's estimate and the exact count in
// approvals show and in the recording, and the preview runs nothing.
func TestMySQLPreviewOfHeldDelete(t *testing.T) {
	t.Parallel()
	extra := fmt.Sprintf(holdConfig, "30s") + "  preview: {timeout: 3s, exact_count: true}\npolicy:\n  rules: {write.delete: review}\n"
	m := startMySQL(t, extra, "", "")
	m.exec(t, "CREATE TABLE t_pv (id INT PRIMARY KEY, v VARCHAR(10))",
		"INSERT INTO t_pv SELECT seq, 'x' FROM seq_1_to_1000", "ANALYZE TABLE t_pv")
	ctx := context.Background()
	rows := func() int {
		var n int
		if err := m.admin(t).QueryRow("SELECT COUNT(*) FROM t_pv").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// One session, so that the refusal and the approved run are recorded
	// together.
	agent, err := openDriver(t, m.driverConfig("agent", "agent-token", "mysql")).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const del = "DELETE FROM t_pv WHERE id <= 300"
	_, err = agent.ExecContext(ctx, del)
	match := regexp.MustCompile(`approval request (\w{8,})`).FindStringSubmatch(fmt.Sprint(err))
	if myCode(err) != 1227 || match == nil {
		t.Fatalf("want a refusal naming an approval request, got %v", err)
	}
	id := match[1]
	show := mustCLI(t, m.instance, devToken, "approvals", "show", id)
	preview := regexp.MustCompile(`preview ok in \S+\n\s+statement 1: delete on table ` + regexp.QuoteMeta(m.db) +
		`\.t_pv: about (2[5-9]\d|3[0-4]\d) rows \(planner estimate\); 300 rows \(exact count\)`)
	if !preview.MatchString(show) {
		t.Fatalf("approvals show lacks the preview:\n%s", show)
	}
	if n := rows(); n != 1000 {
		t.Fatalf("rows = %d: the preview ran the statement", n)
	}
	mustCLI(t, m.instance, devToken, "approvals", "approve", id)
	if _, err := agent.ExecContext(ctx, del); err != nil {
		t.Fatalf("approved retry: %v", err)
	}
	if n := rows(); n != 700 {
		t.Fatalf("rows = %d after the approved DELETE", n)
	}
	var req struct {
		SessionID string `json:"session_id"`
		Preview   struct {
			Status  string `json:"status"`
			Effects []struct {
				Object    string `json:"object"`
				ExactRows int64  `json:"exact_rows"`
			} `json:"effects"`
		} `json:"preview"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, m.instance, devToken, "approvals", "show", "--json", id)), &req); err != nil {
		t.Fatal(err)
	}
	if req.Preview.Status != "ok" || len(req.Preview.Effects) != 1 || req.Preview.Effects[0].ExactRows != 300 {
		t.Fatalf("the request's JSON: %+v", req)
	}

	// The recording keeps the preview with both decisions.
	agent.Close()
	var frames []map[string]any
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, code := airlockCLI(t, m.instance, "", "replay", "--config", "airlock.yaml", "--json", req.SessionID)
		frames = frames[:0]
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var f map[string]any
			if json.Unmarshal([]byte(line), &f) == nil {
				frames = append(frames, f)
			}
		}
		if code == 0 || time.Now().After(deadline) {
			break
		}
	}
	previews := 0
	for _, f := range frames {
		p, ok := f["preview"].(map[string]any)
		if !ok || f["type"] != "decision" {
			continue
		}
		previews++
		effects, _ := p["effects"].([]any)
		if p["status"] != "ok" || len(effects) != 1 {
			t.Fatalf("recorded preview %v", p)
		}
		if e := effects[0].(map[string]any); e["exact_rows"] != 300.0 || e["object"] != m.db+".t_pv" {
			t.Errorf("recorded effect %v", e)
		}
	}
	if previews != 2 {
		t.Fatalf("the recording keeps %d previews, want the refusal's and the approved run's:\n%v", previews, frames)
	}
}
