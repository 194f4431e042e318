package embedded

import (
	"maps"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/switchboard/switchboard/state"
)

// indexedAppend is one XAddIndexed call: entries go on stream, and ids
// receives their IDs.
type indexedAppend struct {
	stream  string
	entries []state.IndexedEntry
	ids     []state.ID
	prev    state.ID // the stream's last ID before ids, for its tail
}

// appendRun writes a run of indexed appends queued back to back as one
// step, with the result of writing them one by one. It is the path of
// appends committed into the tree directly (big ones, and ones the log
// failed to take); the others are logged (wal.go), with the same two
// halves: assignIDs, then writeRun.
func appendRun(tx *bolt.Tx, run []*write, now time.Time) error {
	heads := map[string]*streamMetaRec{}
	err := assignIDs(run, now, func(stream string) (*streamMetaRec, error) {
		h := heads[stream]
		if h == nil {
			h = streamHead(tx, stream)
			heads[stream] = h
		}
		return h, nil
	})
	if err != nil {
		return err
	}
	return writeRun(tx, run)
}

// assignIDs gives each entry of run its ID, in queue order, as XAdd
// does (the millisecond clock, or the last ID's millisecond if the clock
// is behind it, with a sequence), from its stream's head (length and
// last ID), which head returns for this run to advance.
func assignIDs(run []*write, clock time.Time, head func(stream string) (*streamMetaRec, error)) error {
	now := uint64(clock.UnixMilli())
	for _, w := range run {
		a := w.appends
		h, err := head(a.stream)
		if err != nil {
			return err
		}
		a.prev = h.last
		for i := range a.entries {
			if now > h.last.Ms {
				h.last = state.ID{Ms: now}
			} else {
				h.last = next(h.last)
			}
			a.ids[i] = h.last
		}
		h.length += uint64(len(a.entries))
	}
	return nil
}

// streamHead reads stream's head (length and last ID) in tx; a stream
// not yet written has the zero head.
func streamHead(tx *bolt.Tx, stream string) *streamMetaRec {
	h := &streamMetaRec{}
	if sb, _ := streamBucket(tx, []byte(stream), false); sb != nil {
		*h = readMeta(sb)
	}
	return h
}

// writeRun writes run's entries, under the IDs assigned to them, and
// their index entries. Index entries are merged first: a member set
// several times in the run is written once, with the score it was set to
// last.
//
// The merge is what makes a busy stream cheap. Every event on a ticket
// moves the ticket in each list that shows it; with one commit per run,
// each list position is written once per commit instead of once per
// event, and each index's buckets are looked up once.
func writeRun(tx *bolt.Tx, run []*write) error {
	type streamRun struct {
		sb, eb *bolt.Bucket
		meta   streamMetaRec
	}
	streams := map[string]*streamRun{}
	sets := map[string]map[string]float64{}
	for _, w := range run {
		a := w.appends
		sr := streams[a.stream]
		if sr == nil {
			sb, err := streamBucket(tx, []byte(a.stream), true)
			if err != nil {
				return err
			}
			sr = &streamRun{sb: sb, eb: sb.Bucket(streamEntries), meta: readMeta(sb)}
			// Entries only ever go at the end: full pages, half the splits.
			sr.eb.FillPercent = 1
			streams[a.stream] = sr
		}
		for i, e := range a.entries {
			id := a.ids[i]
			if err := sr.eb.Put(idKey(id), e.Value); err != nil {
				return err
			}
			sr.meta.last = id
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
		sr.meta.length += uint64(len(a.entries))
	}
	for _, sr := range streams {
		if err := writeMeta(sr.sb, sr.meta); err != nil {
			return err
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
