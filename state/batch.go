package state

import (
	"context"
	"time"
)

// Batch reads several keys, and writes several keys, indexes and geo
// sets, at once. A path that reads two records and then updates one, its
// history and its indexes would otherwise pay one round trip (Redis) or
// one queued write (embedded) per call, and leave a window in which only
// some of the writes are visible.
type Batch interface {
	// GetMany returns the values of keys in order, in one round trip and
	// as one atomic read (no write lands between two keys): nil for a key
	// that is absent or expired, where an empty value is empty, not nil.
	// Like Get, it does not see counters.
	GetMany(ctx context.Context, keys ...string) ([][]byte, error)

	// Apply performs ops in order as one atomic step, in one round trip:
	// other callers see all of them or none. If swap is not nil it goes
	// first, as CompareAndSwap, in the same step: when it does not swap,
	// no op is performed and Apply returns false. Without a swap Apply
	// returns true.
	//
	// Every op is checked before anything is written: an invalid one
	// (an empty name, a NaN score, a negative TTL or limit) fails the
	// call with ErrInvalidArgument, invalid coordinates with
	// ErrInvalidCoordinates, and nothing is stored.
	Apply(ctx context.Context, swap *Swap, ops ...Op) (bool, error)
}

// Swap is a compare-and-swap as KV.CompareAndSwap takes it: Key gets New
// (and TTL, zero for none) only if its value is Old; a nil Old means
// "only if absent".
type Swap struct {
	Key      string
	Old, New []byte
	TTL      time.Duration
}

// Op is one write of an Apply: SetOp, ZAddOp, ZRemRangeOp or GeoAddOp.
type Op interface{ op() }

// SetOp is KV.Set.
type SetOp struct {
	Key   string
	Value []byte
	TTL   time.Duration
}

// ZAddOp is Index.ZAdd.
type ZAddOp struct {
	Index, Member string
	Score         float64
}

// ZRemRangeOp removes the members of Index whose score lies in [Min,
// Max], lowest first (the order of ZRange), at most Limit of them; a
// Limit of 0 means all. The limit bounds the work of one call, so pruning
// a long-neglected index is spread over many.
type ZRemRangeOp struct {
	Index    string
	Min, Max float64
	Limit    int
}

// GeoAddOp is Geo.GeoAdd.
type GeoAddOp struct {
	Set    string
	Points []GeoPoint
}

func (SetOp) op()       {}
func (ZAddOp) op()      {}
func (ZRemRangeOp) op() {}
func (GeoAddOp) op()    {}
