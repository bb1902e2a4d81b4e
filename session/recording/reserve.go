package recording

import (
	"errors"
	"fmt"
	"os"
)

// Space is reserved on disk ahead of what a recording holds, so that a
// full disk never lets a command run unrecorded. A frame enters the pending
// block only once the file has space allocated (fallocate, without
// changing its size) for everything written or waiting to be written,
// that frame's block included, plus a tail for the session's end and
// trailer. When the space cannot be had, the frame is not recorded and the
// call fails: Check refuses the command before it is forwarded, and the
// session ends. What was recorded before is covered by the space already
// reserved, so the blocks still queued are written and Close writes the end
// and the trailer: the recording verifies, and ends where the disk filled.
//
// A file system that cannot allocate ahead (EOPNOTSUPP) records without a
// reservation; the factory says so once. Close gives back the space past
// the file's end.

// reserveChunk is how much more space is allocated each time the
// reservation runs short: one allocation per 64 KiB recorded.
const reserveChunk = 64 << 10

// firstReserveChunk rounds a file's first reservation, made as it is
// opened: the header, the tail and room for a few commands, one page in
// all. A client that connects per transaction records one command, its
// decision and its result, and ends well within it; its header's write
// already gave the file that page, so the reservation costs the file system
// no allocation and the close has nothing past the end to give back. Each
// page more would be allocated (on tmpfs, zeroed) at every open and freed
// at every close.
const firstReserveChunk = pageSize

// reserveTail is kept allocated beyond the frames for the session's end and
// trailer frames, and the last block's checkpoint, compressed: the end
// frame's reason is cut to maxEndReason so that they fit.
const reserveTail = 2 << 10

// maxEndReason bounds the reason an end frame records; the engines' reasons
// are a few words and an error's text.
const maxEndReason = 1 << 10

// pageSize is the unit in which file systems allocate: space reserved
// within the page that holds a file's end is not worth giving back.
const pageSize = 4 << 10

// errReserveUnsupported: the file system cannot allocate ahead.
var errReserveUnsupported = errors.New("the file system cannot reserve space ahead")

// blockBound is the most a block of n raw bytes takes on disk: its
// checkpoint, the codec's worst case (s2's is n/6 more; zstd's less), and
// the block header and CRC.
func blockBound(n int) int64 {
	n += 256
	return int64(n + n/6 + 64 + blockHdrSize + 4)
}

// ensure makes sure the file has space for the pending block grown by
// extra bytes, besides what is written and queued; it allocates ahead in
// chunks. Callers hold mu.
func (r *recorder) ensure(extra int) error {
	if r.reserveOff {
		return nil
	}
	pending := extra
	if r.raw != nil {
		pending += len(*r.raw)
	}
	need := r.bytes + r.owed + blockBound(pending) + reserveTail
	if need <= r.reserved {
		return nil
	}
	chunk := int64(reserveChunk)
	if r.reserved == 0 {
		chunk = firstReserveChunk
	}
	want := need - r.reserved
	want += chunk - want%chunk
	err := r.f.reserve(r.out, r.reserved, want)
	switch {
	case err == nil:
		r.reserved += want
		return nil
	case errors.Is(err, errReserveUnsupported):
		r.reserveOff = true
		r.f.reserveUnsupported()
		return nil
	}
	return err
}

// refuse records that a frame could not be given space: the frame begun at
// s is dropped, and every later call fails with the error; the recording
// itself stays intact, to be completed by Close. Callers hold mu.
func (r *recorder) refuse(s int, err error) error {
	*r.raw = (*r.raw)[:s]
	r.last = r.prevLast
	r.full = fmt.Errorf("%w: no space for the recording: %w", ErrRecordingFailed, err)
	r.stopped.Store(true)
	r.failReason = failureReason(err, reasonWrite)
	r.f.metrics.writeError(r.failReason)
	r.log.Error("no space to record the next frame; the session must end", "reason", r.failReason, "err", err)
	return r.full
}

// release gives back the space reserved past the file's end. Callers hold
// mu; the file is still open. After a failed write the file may hold more
// than r.bytes (a part of the block), and is left as it is.
func (r *recorder) release() {
	if r.reserveOff || r.out == nil || r.err != nil || r.reserved <= r.bytes {
		return
	}
	if (r.bytes+pageSize-1)/pageSize*pageSize >= r.reserved {
		// Nothing reserved past the page that holds the end: the file
		// system keeps that page for the file anyway.
		r.reserved = r.bytes
		return
	}
	if err := r.f.unreserve(r.out, r.bytes, r.reserved-r.bytes); err != nil {
		r.log.Debug("could not give back the space reserved for the recording", "err", err)
	}
	r.reserved = r.bytes
}

// Probe checks that a new session's recording could be opened now: a file
// can be created in the directory and its first space reserved. Readiness
// calls it.
func (f *Factory) Probe() error {
	out, path, err := f.createProbe()
	if err != nil {
		return err
	}
	defer f.removeProbe(out, path)
	if err := f.reserve(out, 0, reserveTail+reserveChunk); err != nil && !errors.Is(err, errReserveUnsupported) {
		return fmt.Errorf("recording directory %s: %w", f.dir, err)
	}
	return nil
}

// reserveUnsupported logs, once, that recordings are written without a
// reservation.
func (f *Factory) reserveUnsupported() {
	f.warnOnce.Do(func() {
		f.log.Warn("the recording directory's file system cannot reserve space ahead: if the disk fills, the last commands of a session may be missing from its recording", "dir", f.dir)
	})
}

// createProbe creates a readiness probe's file in the directory.
func (f *Factory) createProbe() (file, string, error) {
	p, err := os.CreateTemp(f.dir, ".probe-*")
	if err != nil {
		return nil, "", fmt.Errorf("recording directory %s: %w", f.dir, err)
	}
	return p, p.Name(), nil
}

func (f *Factory) removeProbe(out file, path string) {
	_ = out.Close()
	_ = os.Remove(path)
}
