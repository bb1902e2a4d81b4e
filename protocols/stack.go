package protocols

// GrowStack makes the calling goroutine's stack hold at least StackStart
// bytes at once, for a goroutine that will run a whole session.
//
// A goroutine starts with a few KiB of stack and the runtime doubles it
// whenever a call does not fit, copying every frame on it and adjusting
// their pointers. A session's goroutines went through several doublings,
// each deeper in the call tree than the last (reading the startup packet,
// decoding the first messages, opening the recording), and those copies
// were a tenth of Airlock's CPU for clients that connect per transaction.
// Called first thing in the goroutine, one growth copies a single frame.
// The runtime still shrinks the stack of an idle session at a collection
// when it uses less than a quarter of it.
//
// Hand-written: the Go runtime has no setting for a goroutine's initial
// stack size.
func GrowStack() { growStack() }

// StackStart is the stack GrowStack leaves a goroutine with: enough for a
// session's deepest paths (its profile shows no further growth), and the
// largest size the runtime serves from its per-processor stack caches;
// 32 KiB stacks come from the heap, and the allocation cost more than the
// copies it saved.
const StackStart = 16 << 10

//go:noinline
func growStack() byte {
	// A frame of three quarters of StackStart: the runtime doubles the
	// stack until it fits, which is StackStart. The array is never
	// written; reading one byte at an index the compiler cannot know keeps
	// it, and with it the frame size the prologue checks.
	var b [StackStart * 3 / 4]byte
	return b[sink]
}

// sink is always zero.
var sink int
