package protocols

import "testing"

// deep uses about n KiB of stack, as a session's goroutine does when it
// reads, decodes and records its first messages.
//
//go:noinline
func deep(n int) byte {
	var b [1000]byte
	b[n%len(b)] = byte(n)
	if n == 0 {
		return b[0]
	}
	return b[n%len(b)] + deep(n-1)
}

// BenchmarkSessionGoroutine starts a goroutine that needs about 12 KiB of
// stack, without and with GrowStack first: the difference is the cost of
// the doublings and frame copies that GrowStack saves a session.
func BenchmarkSessionGoroutine(b *testing.B) {
	for _, grow := range []bool{false, true} {
		name := "plain"
		if grow {
			name = "grown"
		}
		b.Run(name, func(b *testing.B) {
			done := make(chan byte)
			for b.Loop() {
				go func() {
					if grow {
						GrowStack()
					}
					done <- deep(12)
				}()
				<-done
			}
		})
	}
}
