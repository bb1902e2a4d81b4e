package login

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/airlock-gw/airlock/session/identity/sso"
)

// Paths are where client settings go; empty fields are not written.
type Paths struct {
	PGPass    string // $PGPASSFILE or ~/.pgpass
	PGService string // $PGSERVICEFILE or ~/.pg_service.conf
	MyCnf     string // ~/.my.cnf
	Dir       string // Airlock's own directory: the env file and mcp.json
}

// DefaultPaths follows libpq's and the mysql client's own defaults.
func DefaultPaths(getenv func(string) string) (Paths, error) {
	home := getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return Paths{}, fmt.Errorf("find the home directory: %w", err)
		}
	}
	p := Paths{
		PGPass:    getenv("PGPASSFILE"),
		PGService: getenv("PGSERVICEFILE"),
		MyCnf:     filepath.Join(home, ".my.cnf"),
	}
	if p.PGPass == "" {
		p.PGPass = filepath.Join(home, ".pgpass")
	}
	if p.PGService == "" {
		p.PGService = filepath.Join(home, ".pg_service.conf")
	}
	config := getenv("XDG_CONFIG_HOME")
	if config == "" {
		config = filepath.Join(home, ".config")
	}
	p.Dir = filepath.Join(config, "airlock")
	return p, nil
}

// ServiceName is the pg_service.conf service, and with _ for -, the MySQL
// option group suffix, of a connection.
func ServiceName(conn string) string { return "airlock-" + conn }

// written lists what Write changed, for the summary and for logout.
type written struct {
	Files []string `json:"files"`
	Hints []string `json:"-"`
}

// Write puts res's client settings for server into p's files. Only the
// block marked with server's name is replaced in shared files.
func Write(p Paths, server string, res *sso.LoginResult) (written, error) {
	var w written
	var pgpass, service, mycnf bytes.Buffer
	name := res.Identity.Name
	for _, c := range res.Connections {
		hostPort := c.Host + ":" + strconv.Itoa(c.Port)
		switch c.Protocol {
		case "postgres":
			fmt.Fprintf(&pgpass, "%s:%d:%s:%s:%s\n", pgpassField(c.Host), c.Port, pgpassField(c.Name), pgpassField(name), pgpassField(res.Credential))
			fmt.Fprintf(&service, "[%s]\nhost=%s\nport=%d\ndbname=%s\nuser=%s\nsslmode=prefer\n\n", ServiceName(c.Name), c.Host, c.Port, c.Name, name)
			w.Hints = append(w.Hints, fmt.Sprintf("psql service=%s   (or PGSERVICE=%s psql)", ServiceName(c.Name), ServiceName(c.Name)))
		case "mysql":
			group := strings.ReplaceAll(ServiceName(c.Name), "-", "_")
			fmt.Fprintf(&mycnf, "[client_%s]\nhost=%s\nport=%d\nuser=%s\npassword=%s\ndatabase=%s\n\n", group, c.Host, c.Port, name, res.Credential, c.Name)
			w.Hints = append(w.Hints, fmt.Sprintf("mysql --defaults-group-suffix=_%s", group))
		case "redis":
			w.Hints = append(w.Hints, fmt.Sprintf(". %s && redis-cli -h %s -p %d --user %s   (%s)", filepath.Join(p.Dir, "env"), c.Host, c.Port, name, hostPort))
		}
	}
	edits := []struct {
		path string
		body []byte
		top  bool
	}{{p.PGPass, pgpass.Bytes(), true}, {p.PGService, service.Bytes(), true}, {p.MyCnf, mycnf.Bytes(), false}}
	for _, e := range edits {
		if e.path == "" || len(e.body) == 0 {
			continue
		}
		if err := editBlock(e.path, server, e.body, e.top); err != nil {
			return w, err
		}
		w.Files = append(w.Files, e.path)
	}
	if p.Dir == "" {
		return w, nil
	}
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return w, fmt.Errorf("create %s: %w", p.Dir, err)
	}
	env := fmt.Sprintf("# Written by airlock login for %s; removed by airlock logout.\n"+
		"# Source it for redis-cli (AUTH %s <credential>) and other tools.\nexport REDISCLI_AUTH=%s\nexport AIRLOCK_TOKEN=%s\n",
		server, name, res.Credential, res.Credential)
	if err := writeFile(filepath.Join(p.Dir, "env"), []byte(env)); err != nil {
		return w, err
	}
	w.Files = append(w.Files, filepath.Join(p.Dir, "env"))
	if res.MCPURL != "" {
		snippet := map[string]any{"mcpServers": map[string]any{"airlock": map[string]any{
			"type": "http", "url": res.MCPURL, "headers": map[string]string{"Authorization": "Bearer " + res.Credential}}}}
		b, _ := json.MarshalIndent(snippet, "", "  ")
		if err := writeFile(filepath.Join(p.Dir, "mcp.json"), append(b, '\n')); err != nil {
			return w, err
		}
		w.Files = append(w.Files, filepath.Join(p.Dir, "mcp.json"))
		w.Hints = append(w.Hints, "MCP clients: merge "+filepath.Join(p.Dir, "mcp.json")+" into the client's configuration")
	}
	return w, nil
}

// Remove takes server's blocks out of p's shared files and deletes
// Airlock's own files.
func Remove(p Paths, server string) ([]string, error) {
	var changed []string
	var errs []error
	for _, path := range []string{p.PGPass, p.PGService, p.MyCnf} {
		if path == "" {
			continue
		}
		ok, err := removeBlock(path, server)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			changed = append(changed, path)
		}
	}
	if p.Dir != "" {
		for _, f := range []string{"env", "mcp.json"} {
			path := filepath.Join(p.Dir, f)
			if err := os.Remove(path); err == nil {
				changed = append(changed, path)
			} else if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return changed, errors.Join(errs...)
}

// pgpassField escapes ':' and '\' as libpq's password file requires.
func pgpassField(s string) string {
	return strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(s)
}

func beginMarker(server string) string { return "# >>> airlock login " + server + " >>>" }
func endMarker(server string) string   { return "# <<< airlock login " + server + " <<<" }

// editBlock replaces server's block in path with body (creating the file
// with mode 0600), at the top when top is set: libpq uses the first
// matching line of a password file and the first section of a name.
func editBlock(path, server string, body []byte, top bool) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	rest, _ := cutBlock(old, server)
	var b bytes.Buffer
	block := func() {
		b.WriteString(beginMarker(server) + "\n")
		b.Write(body)
		b.WriteString(endMarker(server) + "\n")
	}
	if top {
		block()
		b.Write(rest)
	} else {
		b.Write(rest)
		if len(rest) > 0 && !bytes.HasSuffix(rest, []byte("\n")) {
			b.WriteByte('\n')
		}
		block()
	}
	return writeFile(path, b.Bytes())
}

// removeBlock takes server's block out of path; false when it had none.
func removeBlock(path, server string) (bool, error) {
	old, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	rest, found := cutBlock(old, server)
	if !found {
		return false, nil
	}
	return true, writeFile(path, rest)
}

// cutBlock returns data without server's block (from its begin marker
// line to its end marker line) and whether there was one. A block whose
// end marker is missing runs to the end of the file.
func cutBlock(data []byte, server string) ([]byte, bool) {
	begin, end := beginMarker(server), endMarker(server)
	var out bytes.Buffer
	found, inside := false, false
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		text := strings.TrimRight(string(line), "\r\n")
		switch {
		case !inside && text == begin:
			inside, found = true, true
		case inside && text == end:
			inside = false
		case !inside:
			out.Write(line)
		}
	}
	return out.Bytes(), found
}

// writeFile replaces path's contents atomically with mode 0600, following
// a symbolic link so that a linked dotfile stays linked.
func writeFile(path string, data []byte) error {
	if target, err := filepath.EvalSymlinks(path); err == nil {
		path = target
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".airlock-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
