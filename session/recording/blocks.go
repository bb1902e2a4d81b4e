package recording

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Blocks leave the session's goroutines to be compressed and written: a
// full block is sealed and queued under the recorder's lock, and a drain
// goroutine (started when the queue fills from empty, gone when it empties)
// compresses queued blocks with the shared encoder and writes them in
// order. Row thus costs an append, a hash and a CRC on the engine's
// goroutine, while compression runs on another core. The queue is bounded
// (maxQueued blocks per session): a session that outruns its disk waits,
// so memory stays bounded and nothing is dropped. A write error is sticky
// and fails the next Recorder call.

// maxQueued bounds the sealed blocks a session may have waiting.
const maxQueued = 4

// queued is a sealed block and the frame counts it carries, for metrics.
type queued struct {
	raw    *[]byte
	counts [frameTypeLimit]int64
	bound  int64 // the most it takes on disk (blockBound)
}

// flush seals the pending block with a checkpoint and queues it; with wait
// set it then waits while the queue is over its bound. Callers hold mu.
func (r *recorder) flush(wait bool) error {
	if r.raw == nil {
		return r.err
	}
	if err := r.appendSeal(FrameCheckpoint); err != nil {
		return err
	}
	return r.enqueue(wait)
}

// enqueue queues the pending (sealed) block and makes sure a drain
// goroutine runs. Callers hold mu.
func (r *recorder) enqueue(wait bool) error {
	r.push()
	if !r.draining {
		r.draining = true
		go r.drain()
	}
	for wait && len(r.queue) > maxQueued && r.err == nil {
		r.drained.Wait()
	}
	return r.err
}

// push moves the pending (sealed) block to the queue. Callers hold mu.
func (r *recorder) push() {
	b := blockBound(len(*r.raw))
	r.owed += b
	r.queue = append(r.queue, queued{raw: r.raw, counts: r.counts, bound: b})
	r.raw = nil
	r.counts = [frameTypeLimit]int64{}
	r.dirty.Store(false)
}

// drain writes queued blocks in order until the queue is empty or a write
// fails; then it releases what is left and, after a failure, the file.
func (r *recorder) drain() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.drainLocked()
}

// drainLocked is drain for a caller that holds mu and has set draining; it
// lets go of mu while it compresses and writes.
func (r *recorder) drainLocked() {
	for len(r.queue) > 0 && r.err == nil {
		q, out := r.queue[0], r.out
		r.mu.Unlock()
		n, err := r.writeBlock(q.raw, out)
		r.mu.Lock()
		r.queue[0] = queued{}
		r.queue = r.queue[1:]
		r.f.putRaw(q.raw)
		r.owed -= q.bound
		if err != nil {
			r.fail(failureReason(err, reasonWrite), fmt.Errorf("write block: %w", err))
		} else {
			r.bytes += int64(n)
			r.f.metrics.wrote(n, &q.counts)
		}
		r.drained.Broadcast()
	}
	for i, q := range r.queue {
		r.f.putRaw(q.raw)
		r.queue[i] = queued{}
	}
	r.queue = r.queue[:0]
	r.draining = false
	if r.err != nil && r.out != nil && !r.closed {
		_ = r.out.Close()
		r.out = nil
	}
	r.drained.Broadcast()
}

// writeBlock compresses raw with the factory's codec and writes it with its
// lengths and CRC in one call. Nothing is synced here: a crash loses at
// most the blocks the kernel had not written, and a reader trusts whole
// blocks only.
func (r *recorder) writeBlock(raw *[]byte, out file) (int, error) {
	cp := r.f.getComp()
	defer r.f.putComp(cp)
	c := append(*cp, make([]byte, blockHdrSize)...)
	c = r.f.encode(c, *raw)
	binary.LittleEndian.PutUint32(c[0:], uint32(len(c)-blockHdrSize))
	binary.LittleEndian.PutUint32(c[4:], uint32(len(*raw)))
	c = binary.LittleEndian.AppendUint32(c, crc32.Checksum(c, castagnoli))
	*cp = c
	_, err := out.Write(c)
	return len(c), err
}

// tick queues the pending block for the factory's ticker, without waiting.
func (r *recorder) tick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil && !r.closed && len(r.queue) < maxQueued {
		_ = r.flush(false)
	}
}

// waitDrained waits until every queued block is written.
func (r *recorder) waitDrained() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.draining {
		r.drained.Wait()
	}
}
