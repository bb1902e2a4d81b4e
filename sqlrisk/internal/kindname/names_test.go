package kindname

import "testing"

func TestSnake(t *testing.T) {
	for in, want := range map[string]string{
		"CreateForeignServer": "create_foreign_server",
		"AlterTSDictionary":   "alter_ts_dictionary",
		"Select":              "select",
		"DropIndex":           "drop_index",
		"":                    "",
	} {
		if got := Snake(in); got != want {
			t.Errorf("Snake(%q) = %q, want %q", in, got, want)
		}
	}
}
