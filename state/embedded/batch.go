package embedded

import (
	"context"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/switchboard/switchboard/state"
)

// GetMany returns the values of keys from one read transaction.
func (s *Store) GetMany(ctx context.Context, keys ...string) ([][]byte, error) {
	for _, k := range keys {
		if err := checkName("key", k); err != nil {
			return nil, err
		}
	}
	out := make([][]byte, len(keys))
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b, now := tx.Bucket(bucketKV), time.Now().UnixNano()
		for i, k := range keys {
			if rec := b.Get([]byte(k)); live(rec, now) {
				// bbolt's memory is valid only inside the transaction.
				out[i] = append([]byte{}, rec[8:]...)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: getmany: %w", err)
	}
	return out, nil
}

// Apply runs the swap and every op in one write of the single committer,
// so they share one transaction (all or none) and one commit.
func (s *Store) Apply(ctx context.Context, swap *state.Swap, ops ...state.Op) (bool, error) {
	if swap != nil {
		if err := checkKV(swap.Key, swap.TTL); err != nil {
			return false, err
		}
	}
	// Expiries are fixed when the call is made, as in Set.
	now := time.Now()
	writes := make([]func(tx *bolt.Tx) error, len(ops))
	var geoAdds []state.GeoAddOp
	for i, o := range ops {
		w, err := opInTx(o, now)
		if err != nil {
			return false, err
		}
		writes[i] = w
		if g, ok := o.(state.GeoAddOp); ok {
			geoAdds = append(geoAdds, g)
		}
	}
	if swap == nil && len(ops) == 0 {
		return true, s.Ping(ctx)
	}
	var key, old, rec []byte
	if swap != nil {
		key, old, rec = []byte(swap.Key), swap.Old, encodeRecord(expiryFor(now, swap.TTL), swap.New)
	}
	var applied bool
	err := s.update(ctx, func(tx *bolt.Tx) error {
		applied = false
		if swap != nil {
			if ok, err := swapInTx(tx, key, old, rec); err != nil || !ok {
				return err
			}
		}
		for _, w := range writes {
			if err := w(tx); err != nil {
				return err
			}
		}
		applied = true
		return nil
	}, func() {
		if !applied {
			return
		}
		for _, g := range geoAdds {
			s.geo.add(g.Set, g.Points)
		}
	})
	if err != nil {
		return false, fmt.Errorf("embedded: apply: %w", err)
	}
	return applied, nil
}

// opInTx checks o and returns the write that performs it inside a
// transaction. The write may run more than once (see commit).
func opInTx(o state.Op, now time.Time) (func(tx *bolt.Tx) error, error) {
	switch o := o.(type) {
	case state.SetOp:
		if err := checkKV(o.Key, o.TTL); err != nil {
			return nil, err
		}
		k, rec := []byte(o.Key), encodeRecord(expiryFor(now, o.TTL), o.Value)
		return func(tx *bolt.Tx) error { return putKV(tx, k, rec) }, nil
	case state.ZAddOp:
		if err := checkIndex(o.Index, o.Member); err != nil {
			return nil, err
		}
		if math.IsNaN(o.Score) {
			return nil, fmt.Errorf("%w: NaN score", state.ErrInvalidArgument)
		}
		idx, m := []byte(o.Index), []byte(o.Member)
		return func(tx *bolt.Tx) error { return zaddInTx(tx, idx, m, o.Score) }, nil
	case state.ZRemRangeOp:
		if err := checkName("index", o.Index); err != nil {
			return nil, err
		}
		if math.IsNaN(o.Min) || math.IsNaN(o.Max) {
			return nil, fmt.Errorf("%w: NaN range bound", state.ErrInvalidArgument)
		}
		if err := checkCount("limit", o.Limit); err != nil {
			return nil, err
		}
		idx := []byte(o.Index)
		return func(tx *bolt.Tx) error { return zremRangeInTx(tx, idx, o.Min, o.Max, o.Limit) }, nil
	case state.GeoAddOp:
		if err := checkGeoAdd(o.Set, o.Points); err != nil {
			return nil, err
		}
		return func(tx *bolt.Tx) error { return geoAddInTx(tx, o.Set, o.Points) }, nil
	case nil:
		return nil, fmt.Errorf("%w: nil op", state.ErrInvalidArgument)
	}
	return nil, fmt.Errorf("%w: unknown op %T", state.ErrInvalidArgument, o)
}

// zremRangeInTx removes up to limit (0: all) members of idx with a score
// in [lo, hi], lowest first.
func zremRangeInTx(tx *bolt.Tx, idx []byte, lo, hi float64, limit int) error {
	if lo > hi {
		return nil
	}
	_, err := popRange(openIndex(tx, idx), sortable(lo), sortable(hi), limit)
	return err
}
