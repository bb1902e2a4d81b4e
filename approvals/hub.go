package approvals

import "sync"

// hub wakes the goroutines holding sessions when their request changes.
// A wake-up only says "look again": waiters always re-read the store, so a
// spurious or duplicated wake-up is harmless and a lost one is covered by
// the poll.
type hub struct {
	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{}
}

func newHub() *hub { return &hub{waiters: map[string]map[chan struct{}]struct{}{}} }

// subscribe returns a channel signalled when request id changes, and the
// function that stops it.
func (h *hub) subscribe(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	set := h.waiters[id]
	if set == nil {
		set = map[chan struct{}]struct{}{}
		h.waiters[id] = set
	}
	set[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(set, ch)
		if len(set) == 0 {
			delete(h.waiters, id)
		}
		h.mu.Unlock()
	}
}

// wake signals the waiters of id, or every waiter when id is empty.
func (h *hub) wake(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	signal := func(set map[chan struct{}]struct{}) {
		for ch := range set {
			select {
			case ch <- struct{}{}:
			default: // already signalled; the waiter will look anyway
			}
		}
	}
	if id == "" {
		for _, set := range h.waiters {
			signal(set)
		}
		return
	}
	signal(h.waiters[id])
}
