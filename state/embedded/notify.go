package embedded

import "sync"

// notifier wakes blocked stream readers. A reader takes the stream's
// current wait set before it reads, so an XAdd committed after the read
// closes the channel it is about to wait on and no wake-up is lost; a
// closed channel wakes every waiter at once, with no polling.
type notifier struct {
	mu sync.Mutex
	m  map[string]*waitSet
}

type waitSet struct {
	ch chan struct{}
	n  int // readers holding it; the set is dropped when none are left
}

// watch registers interest in stream; release it when done waiting.
func (n *notifier) watch(stream string) *waitSet {
	n.mu.Lock()
	defer n.mu.Unlock()
	w := n.m[stream]
	if w == nil {
		w = &waitSet{ch: make(chan struct{})}
		n.m[stream] = w
	}
	w.n++
	return w
}

func (n *notifier) release(stream string, w *waitSet) {
	n.mu.Lock()
	defer n.mu.Unlock()
	w.n--
	if w.n == 0 && n.m[stream] == w {
		delete(n.m, stream)
	}
}

// wake wakes every reader waiting on stream. It costs a map lookup when
// nobody waits, which is the common case on the write path.
func (n *notifier) wake(stream string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if w := n.m[stream]; w != nil {
		close(w.ch)
		delete(n.m, stream)
	}
}
