package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"

	bolt "go.etcd.io/bbolt"

	"github.com/switchboard/switchboard/state"
)

// An ordered index lives in three top-level buckets that all indexes
// share, its keys in each prefixed by ixPrefix(name):
//
//   - "ixm": prefix+member -> score (8 bytes), for ZScore and updates;
//   - "ixs": prefix+sortable(score)+member -> nothing, so a cursor walks
//     members in the contract's order (score, then member byte-wise) and
//     a range is a seek plus a scan;
//   - "ixn": name -> the index's header: its member count (8 bytes), so
//     ZCard is O(1), and how many of its members are in stream-ID form
//     but have an "ixm" key (8 bytes; see below). An index exists while
//     it has a header.
//
// A member in stream-ID form ("ms-seq", as state.IDMember writes it)
// whose score is its millisecond, which is every timeline entry
// XAddIndexed writes, has no "ixm" key: its score is in its name
// (implicitScore), and its "ixs" key is found from that: a timeline's
// new entries dirty one tail page per commit instead of two. Such a
// member moved to another score gets an "ixm" key, counted in the
// header; while that count is 0, which it is for every timeline, a
// stream-ID member is looked up in "ixs" alone.
//
// Shared trees rather than a bucket per index, because a bbolt bucket is
// a B-tree of its own: a commit that appended to the timelines of 100
// tickets rewrote each timeline's root page, both its trees' branch and
// tail pages, and the parent's page naming it, about 11 pages (44 KiB)
// per ticket. In BenchmarkAppend (ticket/) 40,000 events wrote 87,951
// pages with a bucket per index, 46,761 in shared trees, and 27,596
// with timeline entries in the score tree only.
var (
	bucketIxMembers = []byte("ixm")
	bucketIxScores  = []byte("ixs")
	bucketIxCounts  = []byte("ixn")
)

// ixPrefix is the prefix of index name's keys: its length (2 bytes),
// then the name, so no index's prefix is the start of another's.
func ixPrefix(name []byte) []byte {
	p := make([]byte, 2, 2+len(name))
	binary.BigEndian.PutUint16(p, uint16(len(name)))
	return append(p, name...)
}

// sortable encodes f so that byte order is numeric order: flip all bits
// of negatives, only the sign bit of positives (and -0 is taken as +0,
// as Redis does).
func sortable(f float64) uint64 {
	if f == 0 {
		f = 0
	}
	b := math.Float64bits(f)
	if b>>63 == 1 {
		return ^b
	}
	return b | 1<<63
}

func unsortable(u uint64) float64 {
	if u>>63 == 1 {
		return math.Float64frombits(u &^ (1 << 63))
	}
	return math.Float64frombits(^u)
}

func f64(b []byte) float64    { return math.Float64frombits(binary.BigEndian.Uint64(b)) }
func putF64(f float64) []byte { return binary.BigEndian.AppendUint64(nil, math.Float64bits(f)) }

// ix is one index inside a transaction. Its methods that change members
// change n and idKeys too; save writes them.
type ix struct {
	name                    []byte
	prefix                  []byte
	members, scores, counts *bolt.Bucket
	// mc and sc look keys up in members and scores: one cursor each,
	// repositioned by every lookup, rather than one made per Get (a
	// commit of appends does thousands of lookups).
	mc, sc *bolt.Cursor
	// n is the member count and idKeys the stream-ID members with an
	// "ixm" key, from the header; dirty says they changed.
	n, idKeys int64
	dirty     bool
}

func openIndex(tx *bolt.Tx, name []byte) *ix {
	x := &ix{
		name:    name,
		prefix:  ixPrefix(name),
		members: tx.Bucket(bucketIxMembers),
		scores:  tx.Bucket(bucketIxScores),
		counts:  tx.Bucket(bucketIxCounts),
	}
	x.mc, x.sc = x.members.Cursor(), x.scores.Cursor()
	if v := x.counts.Get(name); len(v) == 16 {
		x.n, x.idKeys = int64(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint64(v[8:]))
	}
	return x
}

// has looks k up with c, returning its value and whether it is there.
func has(c *bolt.Cursor, k []byte) ([]byte, bool) {
	found, v := c.Seek(k)
	return v, bytes.Equal(found, k)
}

func (x *ix) memberKey(m []byte) []byte {
	return append(append(make([]byte, 0, len(x.prefix)+len(m)), x.prefix...), m...)
}

func (x *ix) scoreKey(score float64, m []byte) []byte {
	k := make([]byte, len(x.prefix)+8, len(x.prefix)+8+len(m))
	copy(k, x.prefix)
	binary.BigEndian.PutUint64(k[len(x.prefix):], sortable(score))
	return append(k, m...)
}

// seek puts c on the first score key of x at or after sortable score u,
// returning the score and member there, or ok false past x's keys.
func (x *ix) seek(c *bolt.Cursor, u uint64) (score uint64, m []byte, ok bool) {
	k, _ := c.Seek(binary.BigEndian.AppendUint64(bytes.Clone(x.prefix), u))
	return x.split(k)
}

// next moves c to the next score key of x.
func (x *ix) next(c *bolt.Cursor) (score uint64, m []byte, ok bool) {
	k, _ := c.Next()
	return x.split(k)
}

// split splits a score key into its score and member, ok false if k is
// not one of x's.
func (x *ix) split(k []byte) (score uint64, m []byte, ok bool) {
	if !bytes.HasPrefix(k, x.prefix) {
		return 0, nil, false
	}
	k = k[len(x.prefix):]
	return binary.BigEndian.Uint64(k), k[8:], true
}

// save writes the header if it changed, dropping it when the index has
// emptied (as Redis deletes empty keys).
func (x *ix) save() error {
	if !x.dirty {
		return nil
	}
	x.dirty = false
	if x.n <= 0 {
		return x.counts.Delete(x.name)
	}
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 16), uint64(x.n))
	return x.counts.Put(x.name, binary.BigEndian.AppendUint64(v, uint64(x.idKeys)))
}

// score returns m's score, ok false if m is not a member.
func (x *ix) score(m []byte) (score float64, ok bool) {
	implied, idForm := implicitScore(m)
	if !idForm || x.idKeys > 0 {
		if v, ok := has(x.mc, x.memberKey(m)); ok {
			return f64(v), true
		}
	}
	if !idForm {
		return 0, false
	}
	_, ok = has(x.sc, x.scoreKey(implied, m))
	return implied, ok
}

// set sets m's score.
func (x *ix) set(m []byte, score float64) error {
	old, ok := x.score(m)
	if ok && old == score {
		return nil
	}
	implied, idForm := implicitScore(m)
	hadKey, hasKey := ok && (!idForm || implied != old), !idForm || implied != score
	if ok {
		if err := x.scores.Delete(x.scoreKey(old, m)); err != nil {
			return err
		}
	} else {
		x.n++
	}
	var err error
	switch {
	case hasKey:
		err = x.members.Put(x.memberKey(m), putF64(score)) // over the old key, if any
	case hadKey:
		err = x.members.Delete(x.memberKey(m))
	}
	if err != nil {
		return err
	}
	if idForm && hasKey != hadKey {
		if hasKey {
			x.idKeys++
		} else {
			x.idKeys--
		}
	}
	x.dirty = true
	return x.scores.Put(x.scoreKey(score, m), nil)
}

// remove deletes m, known to be a member at score.
func (x *ix) remove(m []byte, score float64) error {
	if err := x.scores.Delete(x.scoreKey(score, m)); err != nil {
		return err
	}
	// Every member but a stream-ID one at its millisecond has a key.
	if implied, idForm := implicitScore(m); !idForm || implied != score {
		if err := x.members.Delete(x.memberKey(m)); err != nil {
			return err
		}
		if idForm {
			x.idKeys--
		}
	}
	x.n--
	x.dirty = true
	return nil
}

// implicitScore is the score a member in stream-ID form ("ms-seq")
// carries in its name: its millisecond.
func implicitScore(m []byte) (float64, bool) {
	dash := bytes.IndexByte(m, '-')
	ms, ok := digits(m[:max(dash, 0)])
	if _, seqOK := digits(m[dash+1:]); dash < 0 || !ok || !seqOK {
		return 0, false
	}
	return float64(ms), true
}

// digits parses a non-empty run of decimal digits that fits a uint64.
func digits(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// ZAdd sets the score of member.
func (s *Store) ZAdd(ctx context.Context, index, member string, score float64) error {
	if err := checkIndex(index, member); err != nil {
		return err
	}
	if math.IsNaN(score) {
		return fmt.Errorf("%w: NaN score", state.ErrInvalidArgument)
	}
	idx, m := []byte(index), []byte(member)
	err := s.update(ctx, func(tx *bolt.Tx) error {
		return zaddInTx(tx, idx, m, score)
	}, nil)
	if err != nil {
		return fmt.Errorf("embedded: zadd: %w", err)
	}
	return nil
}

// zaddInTx sets member's score in index inside tx.
func zaddInTx(tx *bolt.Tx, idx, m []byte, score float64) error {
	x := openIndex(tx, idx)
	if err := x.set(m, score); err != nil {
		return err
	}
	return x.save()
}

// ZRem removes member and reports whether it was there.
func (s *Store) ZRem(ctx context.Context, index, member string) (bool, error) {
	if err := checkIndex(index, member); err != nil {
		return false, err
	}
	idx, m := []byte(index), []byte(member)
	var removed bool
	err := s.update(ctx, func(tx *bolt.Tx) error {
		x := openIndex(tx, idx)
		old, ok := x.score(m)
		if removed = ok; !ok {
			return nil
		}
		if err := x.remove(m, old); err != nil {
			return err
		}
		return x.save()
	}, nil)
	if err != nil {
		return false, fmt.Errorf("embedded: zrem: %w", err)
	}
	return removed, nil
}

// ZScore returns the score of member or state.ErrNotFound.
func (s *Store) ZScore(ctx context.Context, index, member string) (float64, error) {
	if err := checkIndex(index, member); err != nil {
		return 0, err
	}
	var score float64
	err := s.viewOf(ctx, pendKey{index: true, name: index}, func(tx *bolt.Tx) error {
		var ok bool
		if score, ok = openIndex(tx, []byte(index)).score([]byte(member)); !ok {
			return state.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("embedded: zscore: %w", err)
	}
	return score, nil
}

// ZCard returns the number of members of index.
func (s *Store) ZCard(ctx context.Context, index string) (int64, error) {
	if err := checkName("index", index); err != nil {
		return 0, err
	}
	var n int64
	err := s.viewOf(ctx, pendKey{index: true, name: index}, func(tx *bolt.Tx) error {
		n = openIndex(tx, []byte(index)).n
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("embedded: zcard: %w", err)
	}
	return n, nil
}

// ZRange returns the members whose score lies in [Min, Max], in order.
func (s *Store) ZRange(ctx context.Context, index string, opt state.RangeOptions) ([]state.ScoredMember, error) {
	if err := checkName("index", index); err != nil {
		return nil, err
	}
	if math.IsNaN(opt.Min) || math.IsNaN(opt.Max) {
		return nil, fmt.Errorf("%w: NaN range bound", state.ErrInvalidArgument)
	}
	if err := checkCount("offset", opt.Offset); err != nil {
		return nil, err
	}
	if err := checkCount("limit", opt.Limit); err != nil {
		return nil, err
	}
	var out []state.ScoredMember
	err := s.viewOf(ctx, pendKey{index: true, name: index}, func(tx *bolt.Tx) error {
		x := openIndex(tx, []byte(index))
		if opt.Min > opt.Max {
			return nil
		}
		lo, hi := sortable(opt.Min), sortable(opt.Max)
		c := x.scores.Cursor()
		var k []byte
		var next func() ([]byte, []byte)
		if opt.Reverse {
			// Seek past every key with score hi, then step back: hi+1
			// cannot overflow, since no non-NaN float encodes to 2^64-1.
			if k, _ = c.Seek(binary.BigEndian.AppendUint64(bytes.Clone(x.prefix), hi+1)); k == nil {
				k, _ = c.Last()
			} else {
				k, _ = c.Prev()
			}
			next = c.Prev
		} else {
			k, _ = c.Seek(binary.BigEndian.AppendUint64(bytes.Clone(x.prefix), lo))
			next = c.Next
		}
		skip := opt.Offset
		for ; k != nil; k, _ = next() {
			u, m, ok := x.split(k)
			if !ok || u < lo || u > hi {
				break
			}
			if skip > 0 {
				skip--
				continue
			}
			out = append(out, state.ScoredMember{Member: string(m), Score: unsortable(u)})
			if opt.Limit > 0 && len(out) == opt.Limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: zrange: %w", err)
	}
	return out, nil
}

// ZPopMin removes and returns up to n members with the lowest scores. It
// runs in the single committer, so concurrent poppers never share one.
func (s *Store) ZPopMin(ctx context.Context, index string, n int) ([]state.ScoredMember, error) {
	if err := checkName("index", index); err != nil {
		return nil, err
	}
	if err := checkCount("count", n); err != nil {
		return nil, err
	}
	if n == 0 {
		// Still refuse after Close, as every method does.
		if err := s.Ping(ctx); err != nil {
			return nil, err
		}
		return []state.ScoredMember{}, nil
	}
	idx := []byte(index)
	var out []state.ScoredMember
	err := s.update(ctx, func(tx *bolt.Tx) error {
		out = nil
		var err error
		out, err = popRange(openIndex(tx, idx), 0, math.MaxUint64, n)
		return err
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("embedded: zpopmin: %w", err)
	}
	return out, nil
}

// popRange removes up to limit (0: all) members of x whose sortable
// score is in [lo, hi], lowest first, and returns them.
func popRange(x *ix, lo, hi uint64, limit int) ([]state.ScoredMember, error) {
	// Collect first: deleting under a bbolt cursor skips keys.
	var out []state.ScoredMember
	c := x.scores.Cursor()
	for u, m, ok := x.seek(c, lo); ok && u <= hi; u, m, ok = x.next(c) {
		if limit > 0 && len(out) == limit {
			break
		}
		out = append(out, state.ScoredMember{Member: string(m), Score: unsortable(u)})
	}
	for _, sm := range out {
		if err := x.remove([]byte(sm.Member), sm.Score); err != nil {
			return nil, err
		}
	}
	return out, x.save()
}

func checkIndex(index, member string) error {
	if err := checkName("index", index); err != nil {
		return err
	}
	if err := checkName("member", member); err != nil {
		return err
	}
	// Both go into one key of the shared trees (see ixPrefix).
	if len(index)+len(member) > maxNameLen {
		return fmt.Errorf("%w: index and member longer than %d bytes together", state.ErrInvalidArgument, maxNameLen)
	}
	return nil
}
