package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

const (
	tmpPattern = "airlock-bench-"
	ownerFile  = "harness.pid"
)

// makeTempDir creates the run's temporary directory and records the
// harness's pid in it, so a later run can tell it was abandoned.
func makeTempDir() (string, error) {
	dir, err := os.MkdirTemp("", tmpPattern)
	if err != nil {
		return "", fmt.Errorf("temp dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("temp dir: %w", err)
	}
	// pgbouncer runs as the postgres user and must reach its own
	// subdirectory: let others traverse (not list) the temp dir.
	if err := os.Chmod(dir, 0o711); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("temp dir: %w", err)
	}
	return dir, nil
}

// sweepAbandoned removes temporary directories of earlier runs whose
// harness no longer exists (killed with SIGKILL, which cannot be caught;
// their child processes died with them through the parent-death signal).
// Directories of live runs, and any without a pid file, are left alone.
func sweepAbandoned(root string) []string {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), tmpPattern) {
			continue
		}
		dir := filepath.Join(root, e.Name())
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || alive(pid) {
			continue
		}
		if os.RemoveAll(dir) == nil {
			removed = append(removed, dir)
		}
	}
	return removed
}

// alive reports whether a process with pid exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
