//go:build !unix

package pgcodec

import "time"

func cpuTime() time.Duration { return 0 }
