package recording_test

import (
	"fmt"
	"os"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session/recording"
)

// Example records a session the way an engine does, then verifies and
// replays it as "airlock verify" and "airlock replay" would.
func Example() {
	dir, _ := os.MkdirTemp("", "recordings")
	defer os.RemoveAll(dir)
	key := []byte("an example key of at least 32 bytes!")

	f, err := recording.NewFactory(recording.Config{Dir: dir, Rows: recording.RowsFirst, FirstRows: 100},
		recording.Options{Key: key, Version: "1.0.0"})
	if err != nil {
		panic(err)
	}
	defer f.Close()
	rec, err := f.Open(protocols.SessionInfo{ID: "01JEXAMPLE", Protocol: protocols.Postgres,
		Identity: protocols.Identity{Name: "alice"}, Connection: "prod-pg", Start: time.Now()})
	if err != nil {
		panic(err) // the engine refuses the session
	}
	cmd := &protocols.Command{Kind: "query", Text: "SELECT id FROM users"}
	_ = rec.Command(cmd, "SELECT id FROM users") // the Pipeline passes the redacted text
	_ = rec.Decision(protocols.Decision{Action: protocols.Allow})
	_ = rec.Columns([]protocols.Column{{Name: "id", Type: protocols.TypeNumber}})
	_ = rec.Row([][]byte{[]byte("1")})
	_ = rec.Result(protocols.Result{Tag: "SELECT 1", Rows: 1})
	_ = rec.Close("client closed")

	path, _ := recording.Locate(dir, "01JEXAMPLE")
	rep, err := recording.VerifyFile(path, key)
	fmt.Println(rep.OK(), rep.Status, rep.Frames, err)
	// Output: true intact 7 <nil>
}
