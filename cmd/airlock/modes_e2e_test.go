package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The measurement modes (mysql.mode, redis.mode: decode and relay) serve
// clients without inspecting them: what the policy refuses and what the
// masking rules hide in mode inspect, the same commands get through in
// full. Each test runs inspect too, as the control that shows the policy
// and masking are in force when the mode is not set.

// TestMySQLMeasurementModes runs text and prepared statements in each mode.
func TestMySQLMeasurementModes(t *testing.T) {
	for _, mode := range []string{"inspect", "decode", "relay"} {
		t.Run(mode, func(t *testing.T) {
			m := startMySQL(t, fmt.Sprintf("mysql:\n  mode: %s\npolicy:\n  rules: {write.delete: deny}\n", mode), "", "")
			m.exec(t, "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(32))",
				"INSERT INTO items VALUES (1, 'one'), (2, 'two'), (3, 'three')")
			db := openDriver(t, m.driverConfig("dev", devToken, "mysql"))
			var name string
			// With an argument the driver prepares the statement (binary
			// protocol); without, it sends the text.
			if err := db.QueryRow("SELECT name FROM items WHERE id = ?", 2).Scan(&name); err != nil || name != "two" {
				t.Fatalf("prepared select: %q, %v", name, err)
			}
			var n int
			if err := db.QueryRow("SELECT COUNT(*) FROM items").Scan(&n); err != nil || n != 3 {
				t.Fatalf("text select: %d, %v", n, err)
			}
			_, err := db.Exec("DELETE FROM items WHERE id = 3")
			measured := mode != "inspect"
			switch {
			case measured && err != nil:
				t.Fatalf("mode %s refused a DELETE the policy denies: %v", mode, err)
			case !measured && err == nil:
				t.Fatal("mode inspect let through a DELETE the policy denies")
			}
			warned := strings.Contains(m.Logs(), "mysql.mode is for measurement only")
			if warned != measured {
				t.Errorf("measurement-mode warning logged: %v, want %v\n%s", warned, measured, m.Logs())
			}
		})
	}
}

// TestRedisMeasurementModes runs single and pipelined commands in each
// mode, on a connection whose replies are masked in mode inspect.
func TestRedisMeasurementModes(t *testing.T) {
	for _, mode := range []string{"inspect", "decode", "relay"} {
		t.Run(mode, func(t *testing.T) {
			cfg := strings.Replace(redisMain, "redis:\n", "redis:\n  mode: "+mode+"\n", 1)
			in := startAirlock(t, cfg)
			k := redisKeys(t, "email", "n")
			c := authed(t, in.addr("redis"), "dev@cache", devToken)
			if got := c.do("SET", k[0], "ada@example.com"); got != "+OK" {
				t.Fatalf("SET: %s", got)
			}
			// Three commands in one write: the replies come back in order.
			c.write("*2\r\n$4\r\nINCR\r\n$" + fmt.Sprint(len(k[1])) + "\r\n" + k[1] + "\r\n" +
				"*2\r\n$4\r\nINCR\r\n$" + fmt.Sprint(len(k[1])) + "\r\n" + k[1] + "\r\n" +
				"*1\r\n$4\r\nPING\r\n")
			for _, want := range []string{":1", ":2", "+PONG"} {
				if got := c.read(); got != want {
					t.Fatalf("pipelined reply %s, want %s", got, want)
				}
			}
			measured := mode != "inspect"
			got := c.do("GET", k[0])
			if unmasked := got == "$ada@example.com"; unmasked != measured {
				t.Errorf("GET of an e-mail address in mode %s: %s", mode, got)
			}
			got = c.do("CLIENT", "LIST")
			if refused := strings.HasPrefix(got, "-NOPERM"); refused == measured {
				t.Errorf("CLIENT LIST (denied by the policy) in mode %s: %.80s", mode, got)
			}
			c.send("QUIT")
			if got := c.read(); got != "+OK" {
				t.Errorf("QUIT: %s", got)
			}
			c.expectClosed()
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(in.Logs(), "redis.mode is for measurement only") && measured && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if warned := strings.Contains(in.Logs(), "redis.mode is for measurement only"); warned != measured {
				t.Errorf("measurement-mode warning logged: %v, want %v", warned, measured)
			}
		})
	}
}

// TestHTTPMeasurementMode: in http.mode decode the proxy still forwards
// with its credential, but the route the policy denies runs and the
// e-mail address masking hides in mode inspect comes back as it is.
func TestHTTPMeasurementMode(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer upstream-cred" {
			http.Error(w, "no credential", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"method":%q,"email":"ada@example.com"}`, r.Method)
	}))
	defer up.Close()
	for _, mode := range []string{"inspect", "decode"} {
		t.Run(mode, func(t *testing.T) {
			in := startHTTP(t, fmt.Sprintf(`
listen:
  admin: 127.0.0.1:0
  http: 127.0.0.1:0
log:
  level: debug
identities:
  - name: dev
    token_sha256: %s
http:
  mode: %s
policy:
  rules: {http.admin: deny}
connections:
  - name: api
    protocol: http
    upstream:
      url: %s
      credential: {bearer: upstream-cred}
      routes:
        - {methods: [DELETE], path: /admin/**, rule: http.admin}
    allow: [dev]
    masking:
      detect:
        - {entity: email, strategy: redact}
`, devTokenHash, mode, up.URL))
			do := func(method, path string) (int, string) {
				req, _ := http.NewRequest(method, in.base+"/proxy/api"+path, nil)
				req.Header.Set("Authorization", "Bearer "+devToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			measured := mode == "decode"
			code, body := do("GET", "/users/1")
			if code != http.StatusOK || strings.Contains(body, "ada@example.com") == !measured {
				t.Errorf("GET in mode %s: %d %s", mode, code, body)
			}
			code, body = do("DELETE", "/admin/users/1")
			if (code == http.StatusOK) != measured {
				t.Errorf("DELETE of a denied route in mode %s: %d %s", mode, code, body)
			}
			if warned := strings.Contains(in.Logs(), "http.mode is for measurement only"); warned != measured {
				t.Errorf("measurement-mode warning logged: %v, want %v", warned, measured)
			}
		})
	}
}
