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

// An ordered index is a bucket under bucketIndex holding two buckets and
// a count: "m" maps member -> score (8 bytes) for ZScore and updates, "s"
// holds sortable(score)+member -> nothing, so a cursor walks members in
// the contract's order (score, then member byte-wise) and a range is a
// seek plus a scan. The count makes ZCard O(1).
var (
	idxMembers = []byte("m")
	idxScores  = []byte("s")
	idxCount   = []byte("n")
)

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

func scoreKey(score float64, member []byte) []byte {
	k := make([]byte, 8+len(member))
	binary.BigEndian.PutUint64(k, sortable(score))
	copy(k[8:], member)
	return k
}

func f64(b []byte) float64    { return math.Float64frombits(binary.BigEndian.Uint64(b)) }
func putF64(f float64) []byte { return binary.BigEndian.AppendUint64(nil, math.Float64bits(f)) }

// indexBuckets returns the member and score buckets of index, creating
// them if create is set; nil if the index does not exist.
func indexBuckets(tx *bolt.Tx, index []byte, create bool) (root, members, scores *bolt.Bucket, err error) {
	top := tx.Bucket(bucketIndex)
	if root = top.Bucket(index); root == nil {
		if !create {
			return nil, nil, nil, nil
		}
		if root, err = top.CreateBucket(index); err != nil {
			return nil, nil, nil, err
		}
		if _, err = root.CreateBucket(idxMembers); err != nil {
			return nil, nil, nil, err
		}
		if _, err = root.CreateBucket(idxScores); err != nil {
			return nil, nil, nil, err
		}
	}
	members, scores = root.Bucket(idxMembers), root.Bucket(idxScores)
	if create {
		// Writes mostly land at the end: scores are times (a timeline's
		// new entry, a ticket's last activity) and a timeline's members
		// are stream IDs. Full pages on a split, as for the stream itself,
		// make fewer pages to split and write per commit (about +10%
		// appended events/s in BenchmarkAppend at 1,024 appenders).
		members.FillPercent, scores.FillPercent = 1, 1
	}
	return root, members, scores, nil
}

func indexCount(root *bolt.Bucket) int64 {
	if v := root.Get(idxCount); len(v) == 8 {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

// addCount adjusts the member count, deleting the index when it empties
// (as Redis deletes empty keys) so dead indexes do not pile up.
func addCount(tx *bolt.Tx, index []byte, root *bolt.Bucket, delta int64) error {
	n := indexCount(root) + delta
	if n <= 0 {
		return tx.Bucket(bucketIndex).DeleteBucket(index)
	}
	return root.Put(idxCount, binary.BigEndian.AppendUint64(nil, uint64(n)))
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
	root, members, scores, err := indexBuckets(tx, idx, true)
	if err != nil {
		return err
	}
	if old := members.Get(m); old != nil {
		if err := scores.Delete(scoreKey(f64(old), m)); err != nil {
			return err
		}
	} else if err := addCount(tx, idx, root, 1); err != nil {
		return err
	}
	if err := members.Put(m, putF64(score)); err != nil {
		return err
	}
	return scores.Put(scoreKey(score, m), nil)
}

// ZRem removes member and reports whether it was there.
func (s *Store) ZRem(ctx context.Context, index, member string) (bool, error) {
	if err := checkIndex(index, member); err != nil {
		return false, err
	}
	idx, m := []byte(index), []byte(member)
	var removed bool
	err := s.update(ctx, func(tx *bolt.Tx) error {
		removed = false
		root, members, scores, err := indexBuckets(tx, idx, false)
		if err != nil || root == nil {
			return err
		}
		old := members.Get(m)
		if old == nil {
			return nil
		}
		removed = true
		if err := scores.Delete(scoreKey(f64(old), m)); err != nil {
			return err
		}
		if err := members.Delete(m); err != nil {
			return err
		}
		return addCount(tx, idx, root, -1)
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
	err := s.view(ctx, func(tx *bolt.Tx) error {
		root, members, _, _ := indexBuckets(tx, []byte(index), false)
		if root == nil {
			return state.ErrNotFound
		}
		v := members.Get([]byte(member))
		if v == nil {
			return state.ErrNotFound
		}
		score = f64(v)
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
	err := s.view(ctx, func(tx *bolt.Tx) error {
		if root, _, _, _ := indexBuckets(tx, []byte(index), false); root != nil {
			n = indexCount(root)
		}
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
	err := s.view(ctx, func(tx *bolt.Tx) error {
		root, _, scores, _ := indexBuckets(tx, []byte(index), false)
		if root == nil || opt.Min > opt.Max {
			return nil
		}
		lo, hi := sortable(opt.Min), sortable(opt.Max)
		c := scores.Cursor()
		var k []byte
		var next func() ([]byte, []byte)
		if opt.Reverse {
			// Seek past every key with score hi, then step back: hi+1
			// cannot overflow, since no non-NaN float encodes to 2^64-1.
			if k, _ = c.Seek(binary.BigEndian.AppendUint64(nil, hi+1)); k == nil {
				k, _ = c.Last()
			} else {
				k, _ = c.Prev()
			}
			next = c.Prev
		} else {
			k, _ = c.Seek(binary.BigEndian.AppendUint64(nil, lo))
			next = c.Next
		}
		skip := opt.Offset
		for ; k != nil; k, _ = next() {
			u := binary.BigEndian.Uint64(k)
			if u < lo || u > hi {
				break
			}
			if skip > 0 {
				skip--
				continue
			}
			out = append(out, state.ScoredMember{Member: string(k[8:]), Score: unsortable(u)})
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
		root, members, scores, err := indexBuckets(tx, idx, false)
		if err != nil || root == nil {
			return err
		}
		// Collect first: deleting under a bbolt cursor skips keys.
		var keys [][]byte
		c := scores.Cursor()
		for k, _ := c.First(); k != nil && len(keys) < n; k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys {
			if err := scores.Delete(k); err != nil {
				return err
			}
			if err := members.Delete(k[8:]); err != nil {
				return err
			}
			out = append(out, state.ScoredMember{Member: string(k[8:]), Score: unsortable(binary.BigEndian.Uint64(k))})
		}
		if len(keys) == 0 {
			return nil
		}
		return addCount(tx, idx, root, -int64(len(keys)))
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("embedded: zpopmin: %w", err)
	}
	return out, nil
}

func checkIndex(index, member string) error {
	if err := checkName("index", index); err != nil {
		return err
	}
	return checkName("member", member)
}
