package mysql

import (
	"math"
	"testing"
)

func TestPlanRows(t *testing.T) {
	for _, tc := range []struct {
		name, plan string
		want       float64
		fails      bool
	}{
		{name: "mariadb: one table by index", want: 500, plan: `{"query_block": {"select_id": 1, "nested_loop": [
			{"table": {"table_name": "o", "access_type": "ref", "key": "region", "rows": 500, "filtered": 100}}]}}`},
		{name: "mariadb: a scan with a selective condition", want: 660, plan: `{"query_block": {"select_id": 1,
			"table": {"table_name": "o", "access_type": "ALL", "rows": 2000, "filtered": 33}}}`},
		{name: "mariadb: a join, a block-nl-join and a materialized semi-join", want: 500 * 2 * 0.5 * 1, plan: `{"query_block": {"select_id": 1, "nested_loop": [
			{"table": {"table_name": "o", "access_type": "ALL", "rows": 500, "filtered": 100}},
			{"table": {"table_name": "l", "access_type": "ref", "rows": 2, "filtered": 100}},
			{"block-nl-join": {"table": {"table_name": "x", "access_type": "ALL", "rows": 10, "filtered": 5},
				"buffer_type": "flat", "join_type": "BNL"}},
			{"table": {"table_name": "<subquery2>", "access_type": "eq_ref", "rows": 1, "filtered": 100,
				"materialized": {"unique": 1, "query_block": {"select_id": 2, "nested_loop": [
					{"table": {"table_name": "s", "access_type": "ALL", "rows": 9999, "filtered": 100}}]}}}}]}}`},
		{name: "mariadb: a derived table", want: 2500, plan: `{"query_block": {"select_id": 1, "nested_loop": [
			{"table": {"table_name": "<derived2>", "access_type": "ALL", "rows": 2500, "filtered": 100,
				"materialized": {"query_block": {"union_result": {"query_specifications": []}}}}}]}}`},
		{name: "mariadb: sorted through a temporary table", want: 42, plan: `{"query_block": {"select_id": 1,
			"filesort": {"sort_key": "o.id", "temporary_table": {"nested_loop": [
				{"table": {"table_name": "o", "access_type": "ALL", "rows": 42, "filtered": 100}}]}}}}`},
		{name: "mariadb: duplicates removal", want: 30, plan: `{"query_block": {"select_id": 1, "nested_loop": [
			{"duplicates_removal": [{"table": {"table_name": "a", "rows": 3, "filtered": 100}},
				{"table": {"table_name": "b", "rows": 10, "filtered": 100}}]}]}}`},
		{name: "mariadb: impossible WHERE", want: 0, plan: `{"query_block": {"select_id": 1, "table": {"message": "Impossible WHERE"}}}`},
		{name: "mariadb: no matching const row", want: 0, plan: `{"query_block": {"select_id": 1,
			"table": {"message": "Impossible WHERE noticed after reading const tables"}}}`},
		{name: "mysql 8: one table", want: 150, plan: `{"query_block": {"select_id": 1, "cost_info": {"query_cost": "151.00"},
			"table": {"table_name": "c", "access_type": "ALL", "rows_examined_per_scan": 1500, "rows_produced_per_join": 150,
				"filtered": "10.00", "cost_info": {"read_cost": "1.00"}}}}`},
		{name: "mysql 8: a join, the last table's output", want: 75, plan: `{"query_block": {"select_id": 1, "nested_loop": [
			{"table": {"table_name": "c", "access_type": "ALL", "rows_examined_per_scan": 1500, "rows_produced_per_join": 150, "filtered": "10.00"}},
			{"table": {"table_name": "o", "access_type": "ref", "rows_examined_per_scan": 1, "rows_produced_per_join": 75, "filtered": "50.00",
				"attached_subqueries": [{"query_block": {"table": {"table_name": "z", "rows_produced_per_join": 9}}}]}}]}}`},
		{name: "mysql 8: ordered and grouped wrappers", want: 12, plan: `{"query_block": {"select_id": 1,
			"ordering_operation": {"using_filesort": true, "grouping_operation": {"using_temporary_table": true,
				"table": {"table_name": "t", "rows_examined_per_scan": 12, "rows_produced_per_join": 12, "filtered": "100.00"}}}}}`},
		{name: "mysql 8: impossible WHERE", want: 0, plan: `{"query_block": {"select_id": 1, "message": "Impossible WHERE"}}`},
		{name: "mysql 8.3: format version 2", want: 333.3, plan: `{"query": "/* select#1 */ select 1 from t where a < 3",
			"operation": "Filter: (t.a < 3)", "access_type": "filter", "estimated_rows": 333.3, "estimated_total_cost": 101.5,
			"inputs": [{"operation": "Table scan on t", "access_type": "table", "estimated_rows": 1000}]}`},
		{name: "no tables used", want: 1, plan: `{"query_block": {"select_id": 1, "table": {"message": "No tables used"}}}`},
		{name: "an unknown message", fails: true, plan: `{"query_block": {"select_id": 1, "table": {"message": "Something new"}}}`},
		{name: "no estimate", fails: true, plan: `{"query_block": {"select_id": 1, "table": {"table_name": "t"}}}`},
		{name: "not a plan", fails: true, plan: `{"rows": 3}`},
		{name: "not JSON", fails: true, plan: `EXPLAIN`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := planRows([]byte(tc.plan))
			if tc.fails {
				if err == nil {
					t.Fatalf("read %v from a plan it should not understand", got)
				}
				return
			}
			if err != nil || math.Abs(got-tc.want) > 1e-9 {
				t.Fatalf("got %v (%v), want %v", got, err, tc.want)
			}
		})
	}
}

func TestPreviewQuoting(t *testing.T) {
	for in, want := range map[string]string{`a'b`: `'a''b'`, `c:\d`: `'c:\\d'`, "n\x00l": `'n\0l'`} {
		if got := quoteString(in); got != want {
			t.Errorf("quoteString(%q) = %s, want %s", in, got, want)
		}
	}
	if got := likePattern("`a_b`.`c%d\\`"); got != "%`a\\_b`.`c\\%d\\\\`%" {
		t.Errorf("likePattern: %s", got)
	}
	for in, want := range map[string]string{"orders": "orders", "Order_2$": "Order_2$", "123": "`123`", "a-b": "`a-b`", "x`y": "`x``y`", "": "``"} {
		if got := identName(in); got != want {
			t.Errorf("identName(%q) = %s, want %s", in, got, want)
		}
	}
}
