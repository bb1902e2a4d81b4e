package login

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// client calls the admin listener's /api/sso.
type client struct {
	server string
	http   *http.Client
}

func newClient(server string) *client {
	// The device flow's long poll holds a request up to half a minute.
	return &client{server: server, http: &http.Client{Timeout: 60 * time.Second}}
}

// token is the bearer for the list and revoke calls: the credential of the
// login to this server, else $AIRLOCK_TOKEN.
func (c *client) token(st stateFile, env Env) (string, error) {
	if l, ok := st.Logins[c.server]; ok {
		return l.Credential, nil
	}
	if t := env.Getenv("AIRLOCK_TOKEN"); t != "" {
		return t, nil
	}
	return "", fmt.Errorf("not signed in to %s (run airlock login, or set AIRLOCK_TOKEN)", c.server)
}

// call is do for calls whose only success is 200.
func (c *client) call(ctx context.Context, method, path, token string, in, out any) error {
	status, err := c.do(ctx, method, path, token, in, out)
	if err == nil && status != http.StatusOK {
		return fmt.Errorf("%s %s: unexpected status %d", method, path, status)
	}
	return err
}

// do sends in as JSON and decodes a 2xx answer into out; any other answer
// is an error with the server's message.
func (c *client) do(ctx context.Context, method, path, token string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.server+path, body)
	if err != nil {
		return 0, fmt.Errorf("bad server URL %q: %w", c.server, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("reach %s: %w", c.server, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, fmt.Errorf("read the answer of %s: %w", c.server, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return resp.StatusCode, &apiError{status: resp.StatusCode, msg: e.Error}
		}
		return resp.StatusCode, &apiError{status: resp.StatusCode, msg: strings.TrimSpace(http.StatusText(resp.StatusCode))}
	}
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: malformed answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// apiError is a refusal from the server, with its message.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.msg, e.status) }

func isStatus(err error, status int) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.status == status
}
