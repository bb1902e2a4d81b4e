package main

import (
	"fmt"
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
