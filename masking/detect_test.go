package masking

import (
	"bufio"
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// allRedact enables every detector (us_ssn only when ssn) with redact, so a
// masked span names its entity.
func allRedact(t testing.TB, ssn bool) *Masker {
	t.Helper()
	cfg := Config{Detect: []DetectRule{{Entity: "all", Strategy: Redact}}}
	if ssn {
		cfg.Detect = append(cfg.Detect, DetectRule{Entity: "us_ssn", Strategy: Redact})
	}
	src, err := New(cfg, "test", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return src.m
}

type detectCase struct {
	line     int
	input    string
	positive bool
}

// readDetectCases reads testdata/detect/NAME.txt: "## positive" and
// "## negative" sections, '#' comments, and q:-prefixed Go-quoted lines.
func readDetectCases(t *testing.T, path string) []detectCase {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []detectCase
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		switch {
		case l == "## positive" || l == "## negative":
			section = l[3:]
			continue
		case l == "" || strings.HasPrefix(l, "#"):
			continue
		case section == "":
			t.Fatalf("%s:%d: line outside a section", path, n)
		}
		if rest, ok := strings.CutPrefix(l, "q:"); ok {
			if l, err = strconv.Unquote(rest); err != nil {
				t.Fatalf("%s:%d: %v", path, n, err)
			}
		}
		cases = append(cases, detectCase{n, l, section == "positive"})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

// TestDetectGolden runs every detector's corpus: positives must be masked as
// the file's entity, negatives must pass untouched with every detector on,
// and the exact output is compared with the golden file.
func TestDetectGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/detect/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no detector corpora: %v", err)
	}
	seen := map[string]bool{}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".txt")
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			if _, _, ok := lookupEntity(name); !ok {
				t.Fatalf("%s is not an entity name", name)
			}
			m := allRedact(t, name == "us_ssn")
			want := "[redacted:" + name + "]"
			var golden bytes.Buffer
			for _, c := range readDetectCases(t, path) {
				out := string(m.Text([]byte(c.input)))
				golden.WriteString("> " + strconv.Quote(c.input) + "\n< " + strconv.Quote(out) + "\n")
				if c.positive && !strings.Contains(out, want) {
					t.Errorf("line %d: %q not masked as %s: %q", c.line, c.input, name, out)
				}
				if !c.positive && out != c.input {
					t.Errorf("line %d: look-alike %q was masked: %q", c.line, c.input, out)
				}
			}
			checkGolden(t, strings.TrimSuffix(path, ".txt")+".golden", golden.Bytes())
		})
	}
	for _, n := range entityNames {
		if !seen[n] {
			t.Errorf("entity %s has no corpus in testdata/detect", n)
		}
	}
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (run go test -update and review the diff):\n%s", path, firstDiff(want, got))
	}
}

func firstDiff(want, got []byte) string {
	w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return "line " + strconv.Itoa(i+1) + ":\n  want " + a + "\n  got  " + b
		}
	}
	return ""
}

// TestLookalikes runs ordinary operational data (timestamps, ids, hashes,
// versions, prices, URLs, code) through every default detector: none may
// fire.
func TestLookalikes(t *testing.T) {
	m := allRedact(t, false)
	data, err := os.ReadFile("testdata/lookalikes.txt")
	if err != nil {
		t.Fatal(err)
	}
	for n, l := range strings.Split(string(data), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if out := string(m.Text([]byte(l))); out != l {
			t.Errorf("line %d: %q masked as %q", n+1, l, out)
		}
	}
}
