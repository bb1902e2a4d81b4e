package engine

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeSession is a session whose upstream work ends when the test says.
type fakeSession struct {
	mu        sync.Mutex
	busy      bool // the upstream owes an answer
	ended     bool
	how       string // woken, cancelled, stopped
	cancelled bool
	// finishOnCancel: the upstream answers the cancel.
	finishOnCancel bool
}

func (f *fakeSession) Idle() bool { f.mu.Lock(); defer f.mu.Unlock(); return !f.busy }
func (f *fakeSession) Wake() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.busy && !f.ended {
		f.ended, f.how = true, "woken"
	}
}
func (f *fakeSession) Cancel() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelled = true
	if f.finishOnCancel {
		f.busy = false
	}
}
func (f *fakeSession) Stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.ended {
		f.ended, f.how = true, "stopped"
	}
}
func (f *fakeSession) finish() { f.mu.Lock(); f.busy = false; f.mu.Unlock() }

func openOf(all ...*fakeSession) func() []Draining {
	return func() []Draining {
		var out []Draining
		for _, f := range all {
			f.mu.Lock()
			if !f.ended {
				out = append(out, f)
			}
			f.mu.Unlock()
		}
		return out
	}
}

func TestDrainEndsEachSessionWhenIdle(t *testing.T) {
	idle := &fakeSession{}
	finishing := &fakeSession{busy: true}
	cancelled := &fakeSession{busy: true, finishOnCancel: true}
	hung := &fakeSession{busy: true}
	time.AfterFunc(60*time.Millisecond, finishing.finish)
	rep := Drain(DrainOptions{Timeout: 200 * time.Millisecond, CancelTimeout: 100 * time.Millisecond},
		openOf(idle, finishing, cancelled, hung))
	for _, tc := range []struct {
		name      string
		s         *fakeSession
		how       string
		cancelled bool
	}{
		{"idle", idle, "woken", false},
		{"finishing", finishing, "woken", false},
		{"cancelled", cancelled, "woken", true},
		{"hung", hung, "stopped", true},
	} {
		if tc.s.how != tc.how || tc.s.cancelled != tc.cancelled {
			t.Errorf("%s: ended %q, cancelled %v; want %q, %v", tc.name, tc.s.how, tc.s.cancelled, tc.how, tc.cancelled)
		}
	}
	if rep.Open != 4 || rep.Finished != 2 || rep.Cancelled != 1 || rep.Stopped != 1 {
		t.Errorf("report %+v", rep)
	}
}

func TestDrainWithoutSessionsReturnsAtOnce(t *testing.T) {
	start := time.Now()
	Drain(DrainOptions{Timeout: time.Minute}, openOf())
	if d := time.Since(start); d > time.Second {
		t.Errorf("an empty drain took %v", d)
	}
}

// watchedSession counts what its upstream sent.
type watchedSession struct {
	idle     atomic.Bool
	progress atomic.Uint64
	stalls   atomic.Int32
	again    atomic.Bool
}

func (w *watchedSession) Idle() bool       { return w.idle.Load() }
func (w *watchedSession) Progress() uint64 { return w.progress.Load() }
func (w *watchedSession) Stalled(again bool) {
	w.stalls.Add(1)
	if again {
		w.again.Store(true)
	}
}

func TestWatchStallsSilentCommandsOnly(t *testing.T) {
	silent, talking, idle := &watchedSession{}, &watchedSession{}, &watchedSession{}
	idle.idle.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Watch(ctx, 100*time.Millisecond, func() []Watched { return []Watched{silent, talking, idle} })
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && !silent.again.Load() {
		talking.progress.Add(1)
		time.Sleep(10 * time.Millisecond)
	}
	if !silent.again.Load() || silent.stalls.Load() < 2 {
		t.Errorf("the silent session was stalled %d times (again %v)", silent.stalls.Load(), silent.again.Load())
	}
	if n := talking.stalls.Load(); n != 0 {
		t.Errorf("a session whose upstream talks was stalled %d times", n)
	}
	if n := idle.stalls.Load(); n != 0 {
		t.Errorf("an idle session was stalled %d times", n)
	}
}
