package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/switchboard/switchboard/state"
)

// A stream is a bucket under bucketStreams holding "e", its entries keyed
// by the 16-byte big-endian ID (so byte order is ID order), "meta", its
// length and last ID (so XLen and ID generation need no scan), and "g",
// its consumer groups (group.go).
var (
	streamEntries = []byte("e")
	streamMeta    = []byte("meta")
	streamGroups  = []byte("g")
)

func idKey(id state.ID) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, id.Ms)
	binary.BigEndian.PutUint64(k[8:], id.Seq)
	return k
}

func keyID(k []byte) state.ID {
	return state.ID{Ms: binary.BigEndian.Uint64(k), Seq: binary.BigEndian.Uint64(k[8:])}
}

// next returns the smallest ID greater than id.
func next(id state.ID) state.ID {
	if id.Seq == math.MaxUint64 {
		return state.ID{Ms: id.Ms + 1}
	}
	return state.ID{Ms: id.Ms, Seq: id.Seq + 1}
}

type streamMetaRec struct {
	length uint64
	last   state.ID
}

func readMeta(sb *bolt.Bucket) streamMetaRec {
	v := sb.Get(streamMeta)
	if len(v) != 24 {
		return streamMetaRec{}
	}
	return streamMetaRec{
		length: binary.BigEndian.Uint64(v),
		last:   state.ID{Ms: binary.BigEndian.Uint64(v[8:]), Seq: binary.BigEndian.Uint64(v[16:])},
	}
}

func writeMeta(sb *bolt.Bucket, m streamMetaRec) error {
	v := make([]byte, 24)
	binary.BigEndian.PutUint64(v, m.length)
	binary.BigEndian.PutUint64(v[8:], m.last.Ms)
	binary.BigEndian.PutUint64(v[16:], m.last.Seq)
	return sb.Put(streamMeta, v)
}

// streamBucket returns stream's bucket, creating it if create is set;
// nil if absent.
func streamBucket(tx *bolt.Tx, stream []byte, create bool) (*bolt.Bucket, error) {
	top := tx.Bucket(bucketStreams)
	if sb := top.Bucket(stream); sb != nil || !create {
		return sb, nil
	}
	sb, err := top.CreateBucket(stream)
	if err != nil {
		return nil, err
	}
	if _, err := sb.CreateBucket(streamEntries); err != nil {
		return nil, err
	}
	if _, err := sb.CreateBucket(streamGroups); err != nil {
		return nil, err
	}
	return sb, writeMeta(sb, streamMetaRec{})
}

// XAdd appends values as one write and returns their IDs. IDs are
// generated as Redis does: the millisecond clock, or the last ID's
// millisecond if the clock is behind it (after a restart with a clock
// stepped back), with a sequence for entries in the same millisecond.
func (s *Store) XAdd(ctx context.Context, stream string, values ...[]byte) ([]string, error) {
	if err := checkName("stream", stream); err != nil {
		return nil, err
	}
	if len(values) == 0 {
		if err := s.Ping(ctx); err != nil {
			return nil, err
		}
		return []string{}, nil
	}
	entries := make([]state.IndexedEntry, len(values))
	for i, v := range values {
		entries[i].Value = v
	}
	ids, err := s.appendEntries(ctx, stream, entries)
	if err != nil {
		return nil, fmt.Errorf("embedded: xadd: %w", err)
	}
	return ids, nil
}

// appendEntries queues entries for stream as one indexed append (the
// committer logs or commits it) and returns their IDs.
func (s *Store) appendEntries(ctx context.Context, stream string, entries []state.IndexedEntry) ([]string, error) {
	a := &indexedAppend{stream: stream, entries: cloneEntries(entries), ids: make([]state.ID, len(entries))}
	if err := s.queue(ctx, &write{appends: a, after: func() { s.streams.wake(stream) }, done: make(chan error, 1)}); err != nil {
		return nil, err
	}
	out := make([]string, len(a.ids))
	for i, id := range a.ids {
		out[i] = id.String()
	}
	return out, nil
}

// longestIDMember is as long as an ID member can be, to check the room an
// index entry of XAddIndexed needs.
var longestIDMember = state.IDMember(state.ID{Ms: math.MaxUint64, Seq: math.MaxUint64})

// XAddIndexed appends entries and sets their index entries in one
// transaction: one commit, and never one without the other.
func (s *Store) XAddIndexed(ctx context.Context, stream string, entries ...state.IndexedEntry) ([]string, error) {
	if err := checkName("stream", stream); err != nil {
		return nil, err
	}
	for _, e := range entries {
		for _, ie := range e.Indexes {
			m := ie.Member
			if m == "" {
				m = longestIDMember
			}
			if err := checkIndex(ie.Index, m); err != nil {
				return nil, err
			}
		}
	}
	if len(entries) == 0 {
		return []string{}, s.Ping(ctx)
	}
	ids, err := s.appendEntries(ctx, stream, entries)
	if err != nil {
		return nil, fmt.Errorf("embedded: xadd indexed: %w", err)
	}
	return ids, nil
}

// cloneEntries copies entries and their values: the applier writes a
// logged append into the tree after its caller has returned, and may
// reuse them, and the stream's tail keeps them.
func cloneEntries(entries []state.IndexedEntry) []state.IndexedEntry {
	size, nIdx := 0, 0
	for _, e := range entries {
		size, nIdx = size+len(e.Value), nIdx+len(e.Indexes)
	}
	values, idx := make([]byte, 0, size), make([]state.IndexEntry, 0, nIdx)
	out := make([]state.IndexedEntry, len(entries))
	for i, e := range entries {
		values = append(values, e.Value...)
		idx = append(idx, e.Indexes...)
		out[i] = state.IndexedEntry{
			Value:   values[len(values)-len(e.Value) : len(values) : len(values)],
			Indexes: idx[len(idx)-len(e.Indexes) : len(idx) : len(idx)],
		}
	}
	return out
}

// XLen returns the number of entries in stream.
func (s *Store) XLen(ctx context.Context, stream string) (int64, error) {
	if err := checkName("stream", stream); err != nil {
		return 0, err
	}
	var n int64
	err := s.viewOf(ctx, pendKey{name: stream}, func(tx *bolt.Tx) error {
		if sb, _ := streamBucket(tx, []byte(stream), false); sb != nil {
			n = int64(readMeta(sb).length)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("embedded: xlen: %w", err)
	}
	return n, nil
}

// XRead returns up to count entries after the ID after, waiting up to
// block for some if there are none.
func (s *Store) XRead(ctx context.Context, stream, after string, count int, block time.Duration) ([]state.Entry, error) {
	if err := checkName("stream", stream); err != nil {
		return nil, err
	}
	if err := checkCount("count", count); err != nil {
		return nil, err
	}
	from, err := state.ParseID(after)
	if err != nil {
		return nil, err
	}
	name := []byte(stream)
	out, err := s.blocking(ctx, stream, block, func() ([]state.Entry, error) {
		if out, ok := s.tails.read(stream, from, count); ok {
			if err := s.Ping(ctx); err != nil {
				return nil, err
			}
			return out, nil
		}
		var out []state.Entry
		err := s.viewOf(ctx, pendKey{name: stream}, func(tx *bolt.Tx) error {
			if sb, _ := streamBucket(tx, name, false); sb != nil {
				out = readAfter(sb.Bucket(streamEntries), from, count)
			}
			return nil
		})
		return out, err
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: xread: %w", err)
	}
	return out, nil
}

// readAfter returns up to count (0: all) entries after from, copied out
// of the transaction.
func readAfter(eb *bolt.Bucket, from state.ID, count int) []state.Entry {
	var out []state.Entry
	c := eb.Cursor()
	for k, v := c.Seek(idKey(next(from))); k != nil; k, v = c.Next() {
		out = append(out, state.Entry{ID: keyID(k).String(), Data: bytes.Clone(v)})
		if count > 0 && len(out) == count {
			break
		}
	}
	return out
}

// blocking calls read until it returns entries, and when it returns none
// waits up to block for an XAdd to stream before trying again. It holds
// no lock while it waits; ctx and Close end the wait.
func (s *Store) blocking(ctx context.Context, stream string, block time.Duration, read func() ([]state.Entry, error)) ([]state.Entry, error) {
	if block <= 0 {
		return read()
	}
	timer := time.NewTimer(block)
	defer timer.Stop()
	for {
		// Watch before reading, so an XAdd between the read and the wait
		// still wakes us.
		w := s.streams.watch(stream)
		out, err := read()
		if err != nil || len(out) > 0 {
			s.streams.release(stream, w)
			return out, err
		}
		select {
		case <-w.ch:
			s.streams.release(stream, w)
		case <-timer.C:
			s.streams.release(stream, w)
			return nil, nil
		case <-ctx.Done():
			s.streams.release(stream, w)
			return nil, ctx.Err()
		case <-s.done:
			s.streams.release(stream, w)
			return nil, errClosed
		}
	}
}

// XRevRange returns up to count (0: all) entries before the ID before
// ("" for the end), newest first.
func (s *Store) XRevRange(ctx context.Context, stream, before string, count int) ([]state.Entry, error) {
	if err := checkName("stream", stream); err != nil {
		return nil, err
	}
	if err := checkCount("count", count); err != nil {
		return nil, err
	}
	var until state.ID
	if before != "" {
		var err error
		if until, err = state.ParseID(before); err != nil {
			return nil, err
		}
	}
	var out []state.Entry
	err := s.viewOf(ctx, pendKey{name: stream}, func(tx *bolt.Tx) error {
		sb, _ := streamBucket(tx, []byte(stream), false)
		if sb == nil {
			return nil
		}
		c := sb.Bucket(streamEntries).Cursor()
		var k, v []byte
		if before == "" {
			k, v = c.Last()
		} else if k, _ = c.Seek(idKey(until)); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev() // Seek lands on the first ID >= before
		}
		for ; k != nil; k, v = c.Prev() {
			out = append(out, state.Entry{ID: keyID(k).String(), Data: bytes.Clone(v)})
			if count > 0 && len(out) == count {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: xrevrange: %w", err)
	}
	return out, nil
}
