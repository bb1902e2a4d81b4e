package recording

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

// indexTimeout bounds each call to the Index: Recorder methods carry no
// context, and a stuck store must not hold a session open forever.
const indexTimeout = 10 * time.Second

// Options are a Factory's collaborators. All are optional.
type Options struct {
	// Key signs checkpoints and trailers (Config.Key reads it from the
	// environment); nil writes unsigned recordings.
	Key []byte
	// Index registers each recording; nil records without an index.
	Index   Index
	Metrics *Metrics
	Log     *slog.Logger
	// Version is Airlock's version, written into each header.
	Version string
	// Node names this Airlock instance in headers and index entries;
	// empty: the host name.
	Node string
}

// file is what a Recorder writes to; *os.File in production, a failing
// stand-in in tests.
type file interface {
	Write(p []byte) (int, error)
	Sync() error
	Close() error
}

// Factory opens one Recorder per session under a directory. It implements
// protocols.RecorderFactory and is safe for concurrent use. All its
// recorders share one block encoder, two buffer pools and one flush ticker,
// so an idle session costs a file descriptor and a few hundred bytes.
type Factory struct {
	cfg     Config
	dir     string
	key     []byte
	keyID   string
	index   Index
	metrics *Metrics
	log     *slog.Logger
	version string
	node    string
	encode  blockEncoder
	create  func(path string) (file, error)
	syncFS  func(file) error // syncFileSystem; tests substitute it
	// reserve allocates space in a file ahead of its end, unreserve gives
	// it back (reserve.go); tests substitute them.
	reserve   func(f file, off, n int64) error
	unreserve func(f file, off, n int64) error
	warnOnce  sync.Once
	// since is time.Since; tests substitute a clock that advances in fixed
	// steps so transcripts are repeatable.
	since func(time.Time) time.Duration

	rawPool  sync.Pool // *[]byte, uncompressed blocks being filled
	compPool sync.Pool // *[]byte, compressed blocks being written
	// macs holds HMAC-SHA256 states of key, reset after each use: a new
	// one hashes the key's two pads first, at every checkpoint and trailer.
	macs sync.Pool

	mu     sync.Mutex
	active map[*recorder]struct{}
	closed bool
	stop   chan struct{}
	done   chan struct{}

	// syncQ holds the files of ended sessions waiting for the batched
	// fsync, which the flush ticker runs; syncOff is set when the ticker
	// stops, and later ends sync their own files.
	syncMu  sync.Mutex
	syncQ   []syncItem
	syncOff bool
}

// syncItem is an ended session's file, written but not yet fsynced, and
// its index entry, completed once the file is.
type syncItem struct {
	out   file
	entry Entry
}

// maxSyncQueue bounds the files held open for the batched fsync; past it a
// session syncs its own file.
const maxSyncQueue = 4096

var _ protocols.RecorderFactory = (*Factory)(nil)

// NewFactory checks that cfg.Dir exists or can be created and is writable,
// and starts the flush ticker. Close stops it.
func NewFactory(cfg Config, o Options) (*Factory, error) {
	cfg = cfg.WithDefaults()
	check := cfg
	check.HMACKeyEnv = "" // the key comes in Options
	if err := check.Validate("recording"); err != nil {
		return nil, err
	}
	if cfg.HMACKeyEnv != "" && len(o.Key) == 0 {
		// Fail closed: the configuration asks for signed recordings.
		return nil, fmt.Errorf("recording.hmac_key_env is %s but no key was passed (see Config.Key)", cfg.HMACKeyEnv)
	}
	if len(o.Key) > 0 && len(o.Key) < MinKeyBytes {
		return nil, fmt.Errorf("recording key is %d bytes, want at least %d", len(o.Key), MinKeyBytes)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("recording directory %s: %w", cfg.Dir, err)
	}
	if err := probeDir(dir); err != nil {
		return nil, err
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Node == "" {
		o.Node, _ = os.Hostname()
	}
	encode, err := newBlockEncoder(cfg.Compression)
	if err != nil {
		return nil, err
	}
	f := &Factory{
		cfg:       cfg,
		dir:       dir,
		key:       append([]byte(nil), o.Key...),
		keyID:     KeyID(o.Key),
		index:     o.Index,
		metrics:   o.Metrics,
		log:       o.Log,
		version:   o.Version,
		node:      o.Node,
		encode:    encode,
		create:    createFile,
		syncFS:    syncFileSystem,
		reserve:   reserveSpace,
		unreserve: unreserveSpace,
		since:     time.Since,
		active:    make(map[*recorder]struct{}),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	size := int(cfg.BlockSize)
	f.rawPool.New = func() any { b := make([]byte, 0, size+size/4); return &b }
	f.compPool.New = func() any { b := make([]byte, 0, size/2); return &b }
	f.macs.New = func() any { return hmac.New(sha256.New, f.key) }
	go f.run(cfg.FlushInterval)
	return f, nil
}

// probeDir creates dir if needed and proves a file can be written there, so
// a bad directory fails at startup rather than at the first session.
func probeDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("recording directory %s: %w", dir, err)
	}
	p, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return fmt.Errorf("recording directory %s is not writable: %w", dir, err)
	}
	_, werr := p.Write([]byte("airlock"))
	cerr := p.Close()
	_ = os.Remove(p.Name())
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("recording directory %s is not writable: %w", dir, err)
	}
	return nil
}

// validSessionID reports whether id can name a recording file: 1 to 128
// of A-Z, a-z, 0-9, '_', '-' and '.', not starting with '.'. Hand-written:
// the equivalent regular expression compiles its {0,127} into a program of
// some 260 steps, and matching it at every session's start cost more than
// building the rest of the recording's header.
func validSessionID(id string) bool {
	if id == "" || len(id) > 128 || id[0] == '.' {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}

// Path returns the file a session's recording is written to.
func (f *Factory) Path(id string) (string, error) {
	return PathFor(f.dir, id)
}

// PathFor returns the recording file of session id under dir; it refuses ids
// that could escape dir.
func PathFor(dir, id string) (string, error) {
	if !validSessionID(id) {
		return "", ErrInvalidSessionID
	}
	return filepath.Join(dir, id+FileExt), nil
}

// Locate resolves what a user typed after "airlock replay" or "airlock
// verify": the path of an existing file, or a session id whose recording is
// in dir.
func Locate(dir, idOrPath string) (string, error) {
	if st, err := os.Stat(idOrPath); err == nil && st.Mode().IsRegular() {
		return idOrPath, nil
	}
	path, err := PathFor(dir, idOrPath)
	if err != nil {
		return "", fmt.Errorf("%q is neither a recording file nor a session id: %w", idOrPath, err)
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("no recording for session %s: %w", idOrPath, err)
	}
	return path, nil
}

// Node returns the instance name written into headers and index entries;
// give the session index the same one.
func (f *Factory) Node() string { return f.node }

// Dir returns the absolute recording directory.
func (f *Factory) Dir() string { return f.dir }

// Open creates the session's recording and writes its header. It fails when
// the file cannot be created or written (directory missing or unwritable,
// disk full) or the index refuses the entry: the engine must then refuse the
// session, since nothing may run unrecorded.
func (f *Factory) Open(info protocols.SessionInfo) (protocols.Recorder, error) {
	f.mu.Lock()
	closed := f.closed
	f.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	path, err := f.Path(info.ID)
	if err != nil {
		return nil, fmt.Errorf("open recording: %w", err)
	}
	if info.Start.IsZero() {
		info.Start = time.Now()
	}
	h := f.header(info)
	hb, err := encodeHeader(&h)
	if err != nil {
		return nil, fmt.Errorf("open recording %s: %w", path, err)
	}
	log := protocols.LazyWith(f.log, "session", info.ID, "path", path)
	out, err := f.create(path)
	if err != nil {
		return nil, f.openFailed(log, fmt.Errorf("create recording %s: %w", path, err))
	}
	if _, err := out.Write(hb); err != nil {
		_ = out.Close()
		_ = os.Remove(path)
		return nil, f.openFailed(log, fmt.Errorf("write recording header %s: %w", path, err))
	}
	r := &recorder{
		f:         f,
		log:       log,
		entry:     Entry{Info: info, Path: path, Node: f.node},
		start:     monotonic(info.Start),
		mode:      f.cfg.Rows,
		firstN:    f.cfg.FirstRows,
		blockSize: int(f.cfg.BlockSize),
		version:   h.formatVersion(),
		out:       out,
		h:         newChain(hb),
		link:      linkSeed(hb),
		bytes:     int64(len(hb)),
	}
	r.drained = sync.NewCond(&r.mu)
	if err := r.ensure(0); err != nil {
		_ = out.Close()
		_ = os.Remove(path)
		return nil, f.openFailed(log, fmt.Errorf("reserve space for recording %s: %w", path, err))
	}
	f.metrics.wrote(len(hb), nil)
	if err := f.register(r, log); err != nil {
		_ = out.Close()
		_ = os.Remove(path)
		return nil, err
	}
	f.mu.Lock()
	f.active[r] = struct{}{}
	f.mu.Unlock()
	f.metrics.active(1)
	return r, nil
}

// header is the recording header of a session.
func (f *Factory) header(info protocols.SessionInfo) Header {
	h := Header{
		SessionID:      info.ID,
		Identity:       info.Identity,
		Connection:     info.Connection,
		Protocol:       info.Protocol,
		ClientAddr:     info.ClientAddr,
		AirlockVersion: f.version,
		Node:           f.node,
		Start:          info.Start,
		Rows:           f.cfg.Rows,
		KeyID:          f.keyID,
		Compression:    f.cfg.Compression,
	}
	if h.Rows == RowsFirst {
		h.FirstRows = f.cfg.FirstRows
	}
	return h
}

// register enters r's recording in the session index. A deferred start
// joins the index's next batch, and a refusal ends the session later;
// otherwise the session waits for its entry, and a refusal refuses it.
func (f *Factory) register(r *recorder, log *slog.Logger) error {
	d, ok := f.index.(DeferredIndex)
	if deferred := ok && d.StartedLater(r.entry, r.indexRefused); deferred || f.index == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), indexTimeout)
	err := f.index.Started(ctx, r.entry)
	cancel()
	if err != nil {
		f.metrics.writeError(reasonIndex)
		log.Error("session index refused the recording; refusing the session", "err", err)
		return fmt.Errorf("register recording in the session index: %w", err)
	}
	return nil
}

func (f *Factory) openFailed(log *slog.Logger, err error) error {
	reason := failureReason(err, reasonOpen)
	f.metrics.writeError(reason)
	log.Error("cannot record session; refusing it", "reason", reason, "err", err)
	return err
}

func (f *Factory) release(r *recorder) {
	f.mu.Lock()
	delete(f.active, r)
	f.mu.Unlock()
	f.metrics.active(-1)
}

// run is the one flush ticker shared by all sessions: a pending block waits
// at most one interval before it is compressed and written.
func (f *Factory) run(every time.Duration) {
	defer close(f.done)
	t := time.NewTicker(every)
	defer t.Stop()
	var batch []*recorder
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
			batch = f.flushAll(batch[:0])
			clear(batch)
			f.syncEnded()
		}
	}
}

func (f *Factory) flushAll(batch []*recorder) []*recorder {
	f.mu.Lock()
	for r := range f.active {
		if r.dirty.Load() {
			batch = append(batch, r)
		}
	}
	f.mu.Unlock()
	for _, r := range batch {
		r.tick()
	}
	return batch
}

// Close stops the flush ticker and writes every open recording's pending
// block, waiting until they are on disk. Open recordings stay open (their sessions close them); later Opens
// fail with ErrClosed.
func (f *Factory) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	f.mu.Unlock()
	close(f.stop)
	<-f.done
	f.syncMu.Lock()
	f.syncOff = true
	f.syncMu.Unlock()
	f.syncEnded()
	f.mu.Lock()
	all := make([]*recorder, 0, len(f.active))
	for r := range f.active {
		all = append(all, r)
	}
	f.mu.Unlock()
	for _, r := range all {
		r.tick()
		r.waitDrained()
	}
	return nil
}

// syncLater queues an ended session's file for the batched fsync, after
// which the batch completes its index entry e; it reports false when the
// session must sync the file and complete the entry itself.
func (f *Factory) syncLater(out file, e Entry) bool {
	if f.cfg.Sync != SyncBatched {
		return false
	}
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	if f.syncOff || len(f.syncQ) >= maxSyncQueue {
		return false
	}
	f.syncQ = append(f.syncQ, syncItem{out: out, entry: e})
	return true
}

// syncFSMin is the batch from which ended sessions' files are synced with
// one syncfs(2) of the recording file system instead of one fsync each.
// Each fsync ends with a cache flush of the device; at a thousand short
// sessions a second that was a thousand flushes, and under pgbench -C the
// fsyncs took a sixth of Airlock's CPU (one syncfs: one flush). syncfs also
// writes out what other programs have pending on that file system, earlier
// than the kernel would; a dedicated recordings volume avoids that.
const syncFSMin = 16

// syncEnded syncs and closes the queued files of ended sessions, then
// completes their index entries in one batch. A failure is counted and
// logged with the session, and its entry says the recording failed; the
// recording itself is complete on the file system and verifies.
func (f *Factory) syncEnded() {
	f.syncMu.Lock()
	q := f.syncQ
	f.syncQ = nil
	f.syncMu.Unlock()
	if len(q) == 0 {
		return
	}
	// All the files are in f.dir, on one file system. If syncfs fails,
	// each file's fsync reports its own error.
	synced := len(q) >= syncFSMin && f.syncFS(q[0].out) == nil
	ended := make([]Entry, 0, len(q))
	for _, it := range q {
		var err error
		if !synced {
			err = it.out.Sync()
		}
		if cerr := it.out.Close(); err == nil {
			err = cerr
		}
		e := it.entry
		if err != nil {
			reason := failureReason(err, reasonSync)
			f.metrics.writeError(reason)
			f.log.Error("syncing an ended session's recording failed", "session", e.Info.ID, "reason", reason, "err", err)
			e.EndReason = failedReason(e.EndReason, reason)
		}
		ended = append(ended, e)
	}
	f.indexEnded(ended...)
}

// failedReason is an index entry's end reason when its recording failed.
func failedReason(reason, failure string) string {
	return fmt.Sprintf("%s [recording failed: %s]", reason, failure)
}

// indexEnded completes index entries, all in one transaction when the
// index can; an error is counted and logged, and the recordings stand.
func (f *Factory) indexEnded(es ...Entry) error {
	if f.index == nil || len(es) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), indexTimeout)
	defer cancel()
	var err error
	if b, ok := f.index.(BatchIndex); ok && len(es) > 1 {
		err = b.EndedAll(ctx, es)
	} else {
		var errs []error
		for _, e := range es {
			errs = append(errs, f.index.Ended(ctx, e))
		}
		err = errors.Join(errs...)
	}
	if err != nil {
		f.metrics.writeError(reasonIndex)
		f.log.Error("session index update failed", "sessions", len(es), "err", err)
		return fmt.Errorf("update session index: %w", err)
	}
	return nil
}

// sealMAC is the package's sealMAC with the factory's key, from the pool.
func (f *Factory) sealMAC(t FrameType, count int64, head [32]byte) []byte {
	m := f.macs.Get().(hash.Hash)
	mac := sumSealMAC(m, t, count, head)
	m.Reset()
	f.macs.Put(m)
	return mac
}

func (f *Factory) getRaw() *[]byte {
	b := f.rawPool.Get().(*[]byte)
	*b = (*b)[:0]
	return b
}

func (f *Factory) putRaw(b *[]byte) {
	// A block swollen by one huge frame is not worth keeping.
	if cap(*b) <= 4*int(f.cfg.BlockSize) {
		f.rawPool.Put(b)
	}
}

func (f *Factory) getComp() *[]byte {
	b := f.compPool.Get().(*[]byte)
	*b = (*b)[:0]
	return b
}

func (f *Factory) putComp(b *[]byte) {
	if cap(*b) <= 4*int(f.cfg.BlockSize) {
		f.compPool.Put(b)
	}
}

// monotonic is t with a monotonic clock reading: the session's start
// comes in UTC, which has none, and offsets measured from it would read
// the wall clock (twice as costly, and it can step back).
func monotonic(t time.Time) time.Time {
	now := time.Now()
	return now.Add(-now.Sub(t))
}
