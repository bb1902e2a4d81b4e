package index

import (
	"os"
	"testing"
	"time"
)

// TestMain shortens the deferred starts' window, which most tests only
// wait out; the tests of the window itself set their own.
func TestMain(m *testing.M) {
	deferWindow = 20 * time.Millisecond
	os.Exit(m.Run())
}
