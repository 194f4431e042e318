package embedded

import (
	"maps"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/switchboard/switchboard/state"
)

// indexedAppend is one XAddIndexed call: entries go on stream, and ids
// receives their IDs.
type indexedAppend struct {
	stream  string
	entries []state.IndexedEntry
	ids     []state.ID
}

// appendRun writes a run of indexed appends queued back to back as one
// step, with the result of writing them one by one:
//   - each stream's entries get IDs in queue order, with one read and one
//     write of the stream's metadata for the run;
//   - index entries are merged first: a member set several times in the
//     run is written once, with the score it was set to last.
//
// The merge is what makes a busy stream cheap. Every event on a ticket
// moves the ticket in each list that shows it; with one commit per run,
// each list position is written once per commit instead of once per
// event, and each index's buckets are looked up once.
func appendRun(tx *bolt.Tx, run []*write) error {
	type streamRun struct {
		values [][]byte
		ids    []state.ID
	}
	streams := map[string]*streamRun{}
	for _, w := range run {
		a := w.appends
		sr := streams[a.stream]
		if sr == nil {
			sr = &streamRun{}
			streams[a.stream] = sr
		}
		for _, e := range a.entries {
			sr.values = append(sr.values, e.Value)
		}
	}
	for name, sr := range streams {
		sr.ids = make([]state.ID, len(sr.values))
		if err := appendInTx(tx, []byte(name), sr.values, sr.ids); err != nil {
			return err
		}
	}
	// Hand out the IDs in queue order and collect the index entries.
	next := map[string]int{}
	sets := map[string]map[string]float64{}
	for _, w := range run {
		a := w.appends
		sr, at := streams[a.stream], next[a.stream]
		next[a.stream] = at + len(a.entries)
		for i, e := range a.entries {
			id := sr.ids[at+i]
			a.ids[i] = id
			for _, ie := range e.Indexes {
				m := ie.Member
				if m == "" {
					m = state.IDMember(id)
				}
				set := sets[ie.Index]
				if set == nil {
					set = map[string]float64{}
					sets[ie.Index] = set
				}
				set[m] = float64(id.Ms)
			}
		}
	}
	// In key order, so consecutive writes land on neighbouring pages.
	for _, index := range slices.Sorted(maps.Keys(sets)) {
		if err := setScores(tx, []byte(index), sets[index]); err != nil {
			return err
		}
	}
	return nil
}

// setScores sets the scores of many members of index inside tx.
func setScores(tx *bolt.Tx, idx []byte, set map[string]float64) error {
	x := openIndex(tx, idx)
	for _, m := range slices.Sorted(maps.Keys(set)) {
		if err := x.set([]byte(m), set[m]); err != nil {
			return err
		}
	}
	return x.save()
}
