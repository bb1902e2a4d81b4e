package login

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// session is one server's login as the CLI keeps it, in the 0600 file
// login.json of Paths.Dir.
type session struct {
	Server       string    `json:"server"`
	Provider     string    `json:"provider"`
	Identity     string    `json:"identity"`
	CredentialID string    `json:"credential_id"`
	Credential   string    `json:"credential"`
	ExpiresAt    time.Time `json:"expires_at"`
}

type stateFile struct {
	// Logins by server URL.
	Logins map[string]session `json:"logins"`
	// Last is the server of the latest login, the default for the next
	// command.
	Last string `json:"last,omitempty"`
}

func statePath(p Paths) string { return filepath.Join(p.Dir, "login.json") }

func readState(p Paths) (stateFile, error) {
	st := stateFile{Logins: map[string]session{}}
	b, err := os.ReadFile(statePath(p))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("read %s: %w", statePath(p), err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("read %s: %w", statePath(p), err)
	}
	if st.Logins == nil {
		st.Logins = map[string]session{}
	}
	return st, nil
}

func writeState(p Paths, st stateFile) error {
	if len(st.Logins) == 0 {
		if err := os.Remove(statePath(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return err
	}
	return writeFile(statePath(p), append(b, '\n'))
}
