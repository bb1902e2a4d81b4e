package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

func TestSweepAbandoned(t *testing.T) {
	root := t.TempDir()
	// A pid that certainly ended: a finished child of this test.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	dead := cmd.Process.Pid
	dirs := map[string]string{
		tmpPattern + "dead":  strconv.Itoa(dead),
		tmpPattern + "live":  strconv.Itoa(os.Getpid()),
		tmpPattern + "nopid": "",
		"other-dead":         strconv.Itoa(dead),
	}
	for name, pid := range dirs {
		d := filepath.Join(root, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if pid != "" {
			if err := os.WriteFile(filepath.Join(d, ownerFile), []byte(pid), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	removed := sweepAbandoned(root)
	if len(removed) != 1 || filepath.Base(removed[0]) != tmpPattern+"dead" {
		t.Fatalf("removed %v, want only the dead run's directory", removed)
	}
	for name := range dirs {
		_, err := os.Stat(filepath.Join(root, name))
		if gone := os.IsNotExist(err); gone != (name == tmpPattern+"dead") {
			t.Errorf("%s: gone = %v", name, gone)
		}
	}
}
