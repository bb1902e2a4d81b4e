package mysql

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// planRows reads the optimizer's estimate of the rows a query yields from
// its EXPLAIN FORMAT=JSON, in any of the three shapes servers write:
//
//   - MariaDB: query_block holds a table, or a nested_loop of tables (some
//     wrapped in block-nl-join or duplicates_removal); each table has rows
//     (read per lookup) and filtered (the percentage its conditions keep),
//     so the join yields the product of rows × filtered / 100. A plan
//     with no table to read says why in a message ("Impossible WHERE").
//   - MySQL 5.7 and 8 (explain_json_format_version=1): the same outline,
//     in which each table has rows_produced_per_join, the estimate of the
//     join up to that table; the last one is the query's.
//   - MySQL 8.3 and later with explain_json_format_version=2: a tree of
//     operations whose root has estimated_rows.
//
// Subqueries (attached, materialized, in the select list) are not part of
// the count: their rows feed a condition, not the result. Wrappers that
// sort, group or remove duplicates are read through.
func planRows(doc []byte) (float64, error) {
	var root map[string]any
	if err := json.Unmarshal(doc, &root); err != nil {
		return 0, err
	}
	if v, ok := number(root["estimated_rows"]); ok {
		return v, nil
	}
	qb, ok := root["query_block"].(map[string]any)
	if !ok {
		return 0, errors.New("no query_block")
	}
	if msg, ok := qb["message"].(string); ok {
		return messageRows(msg)
	}
	tables := joinTables(qb, 0)
	if len(tables) == 0 {
		return 0, errors.New("no table in the plan")
	}
	rows, produced := 1.0, -1.0
	for _, t := range tables {
		if msg, ok := t["message"].(string); ok && t["table_name"] == nil {
			return messageRows(msg)
		}
		if p, ok := number(t["rows_produced_per_join"]); ok {
			produced = p
			continue
		}
		r, ok := number(t["rows"])
		if !ok {
			return 0, fmt.Errorf("table %v has no row estimate", t["table_name"])
		}
		if f, ok := number(t["filtered"]); ok {
			r *= f / 100
		}
		rows *= r
	}
	if produced >= 0 {
		return produced, nil
	}
	return rows, nil
}

// wrappers are the plan nodes that hold a join without changing the rows
// it yields, or only by removing duplicates a preview counts anyway.
var wrappers = []string{"ordering_operation", "grouping_operation", "duplicates_removal", "filesort",
	"temporary_table", "read_sorted_file", "windowing", "buffer_result"}

// joinTables lists the tables of the join a plan node holds, in join
// order.
func joinTables(node map[string]any, depth int) []map[string]any {
	if depth > 32 {
		return nil
	}
	if t, ok := node["table"].(map[string]any); ok {
		return []map[string]any{t}
	}
	if bnl, ok := node["block-nl-join"].(map[string]any); ok {
		return joinTables(bnl, depth+1)
	}
	if loop, ok := node["nested_loop"].([]any); ok {
		var out []map[string]any
		for _, step := range loop {
			if m, ok := step.(map[string]any); ok {
				out = append(out, joinTables(m, depth+1)...)
			}
		}
		return out
	}
	for _, w := range wrappers {
		switch v := node[w].(type) {
		case map[string]any:
			return joinTables(v, depth+1)
		case []any:
			var out []map[string]any
			for _, step := range v {
				if m, ok := step.(map[string]any); ok {
					out = append(out, joinTables(m, depth+1)...)
				}
			}
			return out
		}
	}
	return nil
}

// messageRows reads a plan that reads no table: one whose condition is
// never true yields nothing, a query without tables one row.
func messageRows(msg string) (float64, error) {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "impossible"), strings.Contains(m, "no matching"), strings.Contains(m, "zero limit"):
		return 0, nil
	case strings.Contains(m, "no tables used"):
		return 1, nil
	}
	return 0, fmt.Errorf("the plan says %q", msg)
}

// number reads a JSON number, or a number written as a string (MySQL
// writes filtered as "33.33").
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, !math.IsNaN(n) && !math.IsInf(n, 0) && n >= 0
	case string:
		f, err := strconv.ParseFloat(n, 64)
		return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) && f >= 0
	}
	return 0, false
}
