package recording

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

// recorder is one session's Recorder. mu orders the client goroutine's
// commands and the upstream goroutine's rows; the factory's ticker takes it
// only to flush a pending block.
type recorder struct {
	f         *Factory
	log       *slog.Logger
	entry     Entry
	start     time.Time // the session's start, with a monotonic reading
	mode      RowsMode
	firstN    int
	blockSize int
	// version is the file's format version: reply and exchange frames
	// need 3.
	version uint16

	// dirty is set while a pending block holds frames, so the ticker skips
	// idle sessions without taking their lock.
	dirty atomic.Bool
	// rows counts the rows of the current result set; stopped is set with
	// err or closed. Together they let a row that is not recorded (past
	// first_rows, or rows: none) return without taking mu.
	rows    atomic.Int64
	stopped atomic.Bool

	mu         sync.Mutex
	out        file
	raw        *[]byte       // pending block, from the factory's pool; nil when empty
	h          hash.Hash     // the chain: absorbs every frame
	link       uint32        // CRC-32C link of the last frame
	frames     int64         // frames written, pending ones included
	last       time.Duration // time offset of the last frame from start
	bytes      int64         // bytes written to the file
	counts     [frameTypeLimit]int64
	err        error // sticky: set once, returned by every later call
	failReason string
	// unindexed is set when the session index refused a deferred start:
	// every later call returns it, so the session ends, while the file is
	// completed as usual (it is the evidence of what ran meanwhile).
	unindexed error
	closed    bool
	// reserved is how far the file has space allocated (reserve.go); owed
	// the most the queued blocks may take on disk. reserveOff is set when
	// the file system cannot allocate ahead. full is set once a frame could
	// not be given space: every later call returns it, while the blocks
	// already covered are written and Close completes the file. prevLast is
	// last before the frame being built.
	reserved, owed int64
	reserveOff     bool
	full           error
	prevLast       time.Duration
	// queue holds sealed blocks waiting for the drain goroutine, which
	// runs while draining is set; drained is signalled as blocks leave.
	queue    []queued
	draining bool
	drained  *sync.Cond
	// closeDone is closed when the first Close has finished; result is
	// what it returned, for any later Close.
	closeDone chan struct{}
	result    error
}

var _ protocols.ClockedRecorder = (*recorder)(nil)

// usable returns why the recorder cannot take a frame, if it cannot.
func (r *recorder) usable() error {
	if r.err != nil {
		return r.err
	}
	if r.unindexed != nil {
		return r.unindexed
	}
	if r.full != nil {
		return r.full
	}
	if r.closed {
		return ErrClosed
	}
	return nil
}

// Command implements protocols.Recorder. Only redacted is recorded, with
// the message kind, the argument count and a payload's tool, method and
// path: never cmd.Text, cmd.Args, the payload's arguments or body, or the
// path's query, which may hold a password literal, an AUTH token or an API
// key. No hash of the original is kept either, since a hash of a short
// secret can be brute-forced.
func (r *recorder) Command(cmd *protocols.Command, redacted string) error {
	return r.CommandAt(cmd, redacted, time.Time{})
}

// CommandAt implements protocols.ClockedRecorder: Command at time at.
func (r *recorder) CommandAt(cmd *protocols.Command, redacted string, at time.Time) error {
	var kind string
	var argc int
	var payload *protocols.Payload
	if cmd != nil {
		kind, argc, payload = cmd.Kind, len(cmd.Args), cmd.Payload
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.usable(); err != nil {
		return err
	}
	r.rows.Store(0)
	s := r.beginAt(FrameCommand, r.offset(at))
	*r.raw = appendCommand(*r.raw, kind, redacted, argc, payload)
	return r.end(s, FrameCommand)
}

// Decision implements protocols.Recorder.
func (r *recorder) Decision(d protocols.Decision) error {
	return r.fitted(FrameDecision, func(b []byte, limit int) []byte { return appendDecision(b, &d, limit) })
}

// Columns implements protocols.Recorder; it starts a result set.
func (r *recorder) Columns(cols []protocols.Column) error { return r.ColumnsAt(cols, time.Time{}) }

// ColumnsAt implements protocols.ClockedRecorder: Columns at time at.
func (r *recorder) ColumnsAt(cols []protocols.Column, at time.Time) error {
	return r.fittedAt(FrameColumns, at, func(b []byte, limit int) []byte {
		r.rows.Store(0)
		return appendColumns(b, cols, limit)
	})
}

// Row implements protocols.Recorder. It is the hot path: the row is
// appended to the pending block, its bytes hashed once into the chain and
// once into its CRC-32C link; nothing is allocated. Rows past the mode's
// limit cost a lock and a counter.
func (r *recorder) Row(values [][]byte) error {
	n := r.rows.Add(1)
	if (r.mode == RowsNone || (r.mode == RowsFirst && n > int64(r.firstN))) && !r.stopped.Load() {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.usable(); err != nil {
		return err
	}
	if r.mode == RowsNone || (r.mode == RowsFirst && n > int64(r.firstN)) {
		return nil
	}
	s := r.beginAt(FrameRow, r.last)
	*r.raw = appendRow(*r.raw, values)
	return r.end(s, FrameRow)
}

// Parameters implements protocols.Recorder.
func (r *recorder) Parameters(portal string, params []protocols.Param) error {
	return r.fitted(FrameParams, func(b []byte, limit int) []byte { return appendParams(b, portal, params) })
}

// Result implements protocols.Recorder.
func (r *recorder) Result(res protocols.Result) error { return r.ResultAt(res, time.Time{}) }

// ResultAt implements protocols.ClockedRecorder: Result at time at.
func (r *recorder) ResultAt(res protocols.Result, at time.Time) error {
	return r.fittedAt(FrameResult, at, func(b []byte, limit int) []byte { return appendResult(b, &res, limit) })
}

// fitted records a frame whose strings are cut until it fits the frame
// limit; only absurd inputs (hundreds of thousands of columns) need a
// second pass.
func (r *recorder) fitted(t FrameType, enc func(b []byte, limit int) []byte) error {
	return r.fittedAt(t, time.Time{}, enc)
}

// fittedAt is fitted at time at; zero is now.
func (r *recorder) fittedAt(t FrameType, at time.Time, enc func(b []byte, limit int) []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.usable(); err != nil {
		return err
	}
	if (t == FrameReply || t == FrameExchange) && r.version < 3 {
		return r.fail(reasonFrame, fmt.Errorf("%s frame in a format version %d recording: %w", t, r.version, errFrameUnsupported))
	}
	s := r.beginAt(t, r.offset(at))
	mark := len(*r.raw)
	for limit := maxText; ; limit /= 8 {
		*r.raw = enc((*r.raw)[:mark], limit)
		if len(*r.raw)-s <= maxFrameBody || limit == 0 {
			break
		}
	}
	return r.end(s, t)
}

// begin starts a frame of type t in the pending block: a one-byte length
// placeholder, the type and the time since the previous frame. Time offsets
// come from the monotonic clock and never decrease.
func (r *recorder) begin(t FrameType) int {
	return r.beginAt(t, r.offset(time.Time{}))
}

// offset is at's time since the session's start; at zero is now. at from
// time.Now has a monotonic reading, as the start has.
func (r *recorder) offset(at time.Time) time.Duration {
	if at.IsZero() {
		return r.f.since(r.start)
	}
	return at.Sub(r.start)
}

// beginAt is begin at time offset off. Rows take the time of the frame
// before them (dt 0): without a clock read and with identical headers that
// compress better, a row records about a quarter faster (BenchmarkRow), and
// the columns and result frames around the rows date them.
func (r *recorder) beginAt(t FrameType, off time.Duration) int {
	if r.raw == nil {
		r.raw = r.f.getRaw()
		r.dirty.Store(true)
	}
	if off < r.last {
		off = r.last
	}
	r.prevLast = r.last
	b := *r.raw
	s := len(b)
	b = append(b, 0, byte(t))
	b = binary.AppendUvarint(b, uint64(off-r.last))
	r.last = off
	*r.raw = b
	return s
}

// end completes the frame begun at s: it writes the length prefix (moving
// the body when the length needs more than one byte), extends the chain and
// the CRC-32C link with the frame and appends the link. A full block is then
// written.
func (r *recorder) end(s int, t FrameType) error {
	// Room for the frame's length prefix and link too.
	if err := r.ensure(binary.MaxVarintLen32 + 4); err != nil {
		return r.refuse(s, err)
	}
	if err := r.seal(s, t); err != nil {
		return err
	}
	if len(*r.raw) >= r.blockSize {
		return r.flush(true)
	}
	return nil
}

func (r *recorder) seal(s int, t FrameType) error {
	b := *r.raw
	n := len(b) - s - 1
	if n > maxFrameBody {
		*r.raw = b[:s]
		return r.fail(reasonWrite, fmt.Errorf("%s frame of %d bytes exceeds the %d byte limit", t, n, maxFrameBody))
	}
	var lp [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(lp[:], uint64(n))
	if k > 1 {
		b = append(b, lp[:k-1]...)
		copy(b[s+k:], b[s+1:s+1+n])
	}
	copy(b[s:], lp[:k])
	fr := b[s : s+k+n]
	r.h.Write(fr)
	r.link = crc32.Update(r.link, castagnoli, fr)
	*r.raw = binary.LittleEndian.AppendUint32(b, r.link)
	r.frames++
	if t < frameTypeLimit {
		r.counts[t]++
	}
	return nil
}

// appendSeal begins, fills and completes a checkpoint or trailer over the
// frames so far, signed when the factory has a key.
func (r *recorder) appendSeal(t FrameType) error {
	hd := head(r.h)
	var mac []byte
	if len(r.f.key) > 0 {
		mac = r.f.sealMAC(t, r.frames, hd)
	}
	s := r.begin(t)
	*r.raw = appendSeal(*r.raw, r.frames, &hd, mac)
	return r.seal(s, t)
}

// indexRefused is the session index's report that it could not register
// the session after Open returned (see DeferredIndex).
func (r *recorder) indexRefused(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.unindexed != nil {
		return
	}
	r.unindexed = fmt.Errorf("%w: %w", ErrRecordingFailed, err)
	r.f.metrics.writeError(reasonIndex)
	r.log.Error("session index refused the recording; the session must end", "err", err)
}

// fail makes err sticky, counts and logs it once, and lets go of the
// pending block. The file is closed here, or by the drain goroutine when
// one is running. Callers hold mu.
func (r *recorder) fail(reason string, err error) error {
	if r.err != nil {
		return r.err
	}
	r.err = fmt.Errorf("%w: %w", ErrRecordingFailed, err)
	r.stopped.Store(true)
	r.failReason = reason
	r.f.metrics.writeError(reason)
	r.log.Error("session recording failed; the session must end", "reason", reason, "err", err)
	if r.raw != nil {
		r.f.putRaw(r.raw)
		r.raw = nil
		r.dirty.Store(false)
	}
	if !r.draining && r.out != nil {
		_ = r.out.Close()
		r.out = nil
	}
	return r.err
}

// Close implements protocols.Recorder: it records the session end and the
// trailer, waits until every block is written, and syncs the file (the one
// fsync of a session), closes it and completes the index entry. By default
// (Config.Sync batched) the factory does those last three for the sessions
// that ended within one flush interval together, so Close does not wait for
// the disk. A second Close returns the first's result.
func (r *recorder) Close(reason string) error {
	r.mu.Lock()
	if r.closed {
		done := r.closeDone
		r.mu.Unlock()
		<-done
		return r.result
	}
	r.closeDone = make(chan struct{})
	defer close(r.closeDone)
	r.stopped.Store(true)
	r.closed = true // no frame after the trailer
	if r.err == nil {
		s := r.begin(FrameEnd)
		*r.raw = appendStr(*r.raw, reason, maxEndReason)
		if r.seal(s, FrameEnd) == nil && r.appendSeal(FrameTrailer) == nil {
			r.push()
		}
	}
	if !r.draining && len(r.queue) > 0 {
		// The last blocks are written here: a drain goroutine would only
		// be waited for (starting one and handing over cost more than
		// compressing a short session's one block).
		r.draining = true
		r.drainLocked()
	}
	for r.draining {
		r.drained.Wait()
	}
	r.release()
	e := r.entry
	e.End, e.EndReason, e.Frames, e.Bytes = time.Now(), reason, r.frames, r.bytes
	indexed := r.unindexed == nil
	batched := r.err == nil && indexed && r.f.syncLater(r.out, e)
	if batched {
		r.out = nil // the factory syncs and closes it, then completes e, with the next batch
	} else if r.err == nil {
		if err := r.out.Sync(); err != nil {
			r.fail(failureReason(err, reasonSync), fmt.Errorf("sync: %w", err))
		}
	}
	if r.out != nil {
		if err := r.out.Close(); err != nil {
			r.fail(failureReason(err, reasonSync), fmt.Errorf("close: %w", err))
		}
		r.out = nil
	}
	err := r.err
	if err != nil || r.full != nil {
		e.EndReason = failedReason(reason, r.failReason)
	}
	r.mu.Unlock()

	r.f.release(r)
	if !batched && indexed {
		err = errors.Join(err, r.f.indexEnded(e))
	}
	r.result = err // published to later Closes by closing closeDone
	return err
}

// errFrameUnsupported refuses a frame the recording's format version cannot
// hold: reply and exchange frames in a PostgreSQL session's recording
// (version 1 or 2), whose readers would skip them as unknown.
var errFrameUnsupported = errors.New("frame type not supported by the recording's format version")
