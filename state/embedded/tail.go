package embedded

import (
	"bytes"
	"slices"
	"sync"

	"github.com/switchboard/switchboard/state"
)

// A stream's tail: its newest entries, kept in memory from the moment
// they are durable (in the log, or committed), so a reader following the stream
// (the live feed) reads them at once instead of waiting for the applier
// to write them into the tree, and without a read transaction. It holds
// every entry after floor, in ID order; a read from before floor goes to
// the tree.
const (
	tailEntries = 8192
	tailBytes   = 8 << 20
)

// tails are the streams' tails. The committer adds the entries it logs,
// the applier those it commits; readers read.
type tails struct {
	mu sync.Mutex
	m  map[string]*tail
}

type tail struct {
	mu      sync.RWMutex
	floor   state.ID // every entry after it is here
	ids     []state.ID
	entries []state.Entry
	size    int // bytes of data held
}

// addRun adds the entries of a run of appends now durable, in order.
func (ts *tails) addRun(run []*write) {
	for _, w := range run {
		if a := w.appends; a != nil {
			ts.add(a.stream, a.prev, a)
		}
	}
}

// add appends an append's entries, whose IDs follow prev, the stream's
// last ID before them. A tail that does not end at prev (new, or one
// that missed entries) starts again there.
func (ts *tails) add(stream string, prev state.ID, a *indexedAppend) {
	ts.mu.Lock()
	if ts.m == nil {
		ts.m = map[string]*tail{}
	}
	t := ts.m[stream]
	if t == nil {
		t = &tail{floor: prev}
		ts.m[stream] = t
	}
	ts.mu.Unlock()

	t.mu.Lock()
	defer t.mu.Unlock()
	last := t.floor
	if n := len(t.ids); n > 0 {
		last = t.ids[n-1]
	}
	if last != prev {
		// New, or reset: it starts again at prev.
		clear(t.entries)
		t.floor, t.ids, t.entries, t.size = prev, t.ids[:0], t.entries[:0], 0
	}
	for i, e := range a.entries {
		t.ids = append(t.ids, a.ids[i])
		t.entries = append(t.entries, state.Entry{ID: a.ids[i].String(), Data: e.Value})
		t.size += len(e.Value)
	}
	if len(t.ids) > tailEntries || t.size > tailBytes {
		// Drop the older half at once: copying down is then paid once
		// per half a tail of appends.
		drop := len(t.ids) / 2
		for _, e := range t.entries[:drop] {
			t.size -= len(e.Data)
		}
		t.floor = t.ids[drop-1]
		t.ids = slices.Delete(t.ids, 0, drop)
		clear(t.entries[:drop])
		t.entries = slices.Delete(t.entries, 0, drop)
	}
}

// read returns up to count (0: all) entries of stream after from, with
// ok false if the tail does not hold everything after from.
func (ts *tails) read(stream string, from state.ID, count int) (out []state.Entry, ok bool) {
	ts.mu.Lock()
	t := ts.m[stream]
	ts.mu.Unlock()
	if t == nil {
		return nil, false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if from.Less(t.floor) {
		return nil, false
	}
	i, _ := slices.BinarySearchFunc(t.ids, from, func(id, from state.ID) int {
		if from.Less(id) {
			return 1
		}
		return -1
	})
	n := len(t.ids) - i
	if count > 0 && n > count {
		n = count
	}
	out = make([]state.Entry, n)
	for j := range out {
		e := t.entries[i+j]
		// The caller owns what it is given; the tail is shared.
		out[j] = state.Entry{ID: e.ID, Data: bytes.Clone(e.Data)}
	}
	return out, true
}
