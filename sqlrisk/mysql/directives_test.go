package mysql

import (
	"reflect"
	"testing"
)

func TestReadDirectives(t *testing.T) {
	for _, tc := range []struct {
		text string
		want Directives
	}{
		{"SELECT * FROM users", Directives{}},
		{"SELECT 'use other' FROM reuse", Directives{Statements: 1}},
		{"USE other", Directives{Uses: []string{"other"}, Statements: 1}},
		{"use `we``ird`", Directives{Uses: []string{"we`ird"}, Statements: 1}},
		{"SELECT 1; /*!40101 USE other */", Directives{Uses: []string{"other"}, Statements: 2}},
		{"/*M!100000 USE other */", Directives{Uses: []string{"other"}, Statements: 1}},
		{"-- USE other\nSELECT 1", Directives{Statements: 1}},
		{"USE", Directives{Statements: 1, Unsure: true}},
		{"USE a b", Directives{Uses: []string{"a"}, Statements: 1, Unsure: true}},
		{"LOAD DATA LOCAL INFILE '/tmp/x.csv' INTO TABLE t", Directives{LocalFiles: []string{"/tmp/x.csv"}, Statements: 1}},
		{"load data low_priority local infile 'a''b' into table t; LOAD DATA INFILE '/srv/f' INTO TABLE t",
			Directives{LocalFiles: []string{"a'b"}, Statements: 2}},
		{"LOAD XML LOCAL INFILE 'x.xml' INTO TABLE t", Directives{LocalFiles: []string{"x.xml"}, Statements: 1}},
		{"KILL QUERY 42", Directives{Kills: []Kill{{ID: 42, Query: true, OK: true}}, Statements: 1}},
		{"kill 7;", Directives{Kills: []Kill{{ID: 7, OK: true}}, Statements: 1}},
		{"KILL HARD CONNECTION 7", Directives{Kills: []Kill{{ID: 7, OK: true}}, Statements: 1}},
		{"KILL USER bob", Directives{Kills: []Kill{{}}, Statements: 1}},
		{"SELECT 1; KILL QUERY ID 5", Directives{Kills: []Kill{{Query: true}}, Statements: 2}},
		{"USE 'unterminated", Directives{Statements: 1, Unsure: true}},
	} {
		if got := ReadDirectives(tc.text); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ReadDirectives(%q) = %+v, want %+v", tc.text, got, tc.want)
		}
	}
}

// TestReadDirectivesReadings: a backslash can move a string's end, and with
// it a statement boundary; a USE that only one reading sees is still
// reported, and the text is unsure.
func TestReadDirectivesReadings(t *testing.T) {
	d := ReadDirectives(`SELECT 'a\'; USE other; SELECT '`)
	if !d.Unsure || len(d.Uses) != 1 || d.Uses[0] != "other" {
		t.Fatalf("got %+v", d)
	}
}

// FuzzReadDirectives: any text reads without panic, and a text without
// the words USE, LOAD or KILL has no directives.
func FuzzReadDirectives(f *testing.F) {
	for _, s := range []string{"USE a", "LOAD DATA LOCAL INFILE 'x' INTO TABLE t", "KILL QUERY 5", "SELECT 'use' /*!40101 USE b */",
		"use `a``b`; kill 1", `SELECT 'a\'; USE c; SELECT '`, "LOAD DATA LOCAL INFILE"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		d := ReadDirectives(text)
		if !hasDirectiveWord(text) && (len(d.Uses) > 0 || len(d.LocalFiles) > 0 || len(d.Kills) > 0) {
			t.Fatalf("directives %+v in a text without their words", d)
		}
	})
}
