package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Facts describe the machine and the software measured.
type Facts struct {
	Cores          int
	CPUModel       string
	MemoryGiB      float64
	Kernel         string
	GoVersion      string
	Postgres       string
	MaxConnections int
	Pgbench        string
	Pgbouncer      string
	AirlockCommit  string
	LoadBefore     string // /proc/loadavg at the start
	LoadAfter      string // and at the end
}

// gatherFacts reads the machine's and the servers' facts. A fact that
// cannot be read is reported as such rather than failing the run.
func (b *bench) gatherFacts(ctx context.Context) Facts {
	f := Facts{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), LoadBefore: loadAvg()}
	f.CPUModel, f.MemoryGiB = cpuAndMemory()
	f.Kernel = readTrim("/proc/sys/kernel/osrelease")
	if c, err := pgx.Connect(ctx, b.pgURL("postgres")); err == nil {
		var v string
		if c.QueryRow(ctx, "SHOW server_version").Scan(&v) == nil {
			f.Postgres = v
		}
		_ = c.QueryRow(ctx, "SELECT current_setting('max_connections')::int").Scan(&f.MaxConnections)
		c.Close(ctx)
	}
	f.Pgbench = firstLine(ctx, b.pgbenchBin, "-V")
	f.Pgbouncer = firstLine(ctx, b.pgbouncerBin, "-V")
	f.AirlockCommit = gitCommit(ctx, b.repo)
	return f
}

func cpuAndMemory() (model string, memGiB float64) {
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				memGiB = kb / (1 << 20)
				break
			}
		}
		f.Close()
	}
	if model == "" {
		model = "unknown"
	}
	return model, memGiB
}

func loadAvg() string {
	f := strings.Fields(readTrim("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

func firstLine(ctx context.Context, bin string, args ...string) string {
	out, err := runCmd(ctx, exec.Command(bin, args...))
	if err != nil {
		return "unknown"
	}
	l, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return l
}

// gitCommit names the checkout's commit, marking a dirty working tree.
func gitCommit(ctx context.Context, repo string) string {
	cmd := exec.Command("git", "rev-parse", "--short=12", "HEAD")
	cmd.Dir = repo
	out, err := runCmd(ctx, cmd)
	if err != nil {
		return "unknown (not a git checkout)"
	}
	commit := strings.TrimSpace(string(out))
	// The binary is built from the working tree, which may hold changes
	// not yet committed (modified or new files): say so.
	st := exec.Command("git", "status", "--porcelain")
	st.Dir = repo
	if out, err := runCmd(ctx, st); err == nil && len(strings.TrimSpace(string(out))) > 0 {
		commit += fmt.Sprintf(" + uncommitted working tree (%d paths modified or new)", len(strings.Split(strings.TrimSpace(string(out)), "\n")))
	}
	return commit
}
