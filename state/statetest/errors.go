package statetest

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/switchboard/switchboard/state"
)

var errorCases = []testCase{
	{"InvalidArgument", testInvalidArgument},
}

// testInvalidArgument checks the arguments state.ErrInvalidArgument names
// (an empty key, a negative count, a malformed stream ID) and a NaN score,
// which no backend can order.
func testInvalidArgument(t *testing.T, s state.Store) {
	ctx := testContext(t)
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Set empty key", func(ctx context.Context) error { return s.Set(ctx, "", []byte("v"), 0) }},
		{"Get empty key", func(ctx context.Context) error { _, err := s.Get(ctx, ""); return err }},
		{"GetMany empty key", func(ctx context.Context) error { _, err := s.GetMany(ctx, "k", ""); return err }},
		{"SetNX empty key", func(ctx context.Context) error { _, err := s.SetNX(ctx, "", []byte("v"), 0); return err }},
		{"Incr empty key", func(ctx context.Context) error { _, err := s.Incr(ctx, "", 1, 0); return err }},
		{"ZAdd NaN score", func(ctx context.Context) error { return s.ZAdd(ctx, "idx", "m", math.NaN()) }},
		{"ZPopMin negative count", func(ctx context.Context) error { _, err := s.ZPopMin(ctx, "idx", -1); return err }},
		{"XAdd empty stream name", func(ctx context.Context) error { _, err := s.XAdd(ctx, "", []byte("v")); return err }},
		{"XRead malformed ID", func(ctx context.Context) error { _, err := s.XRead(ctx, "s", "not-an-id", 10, 0); return err }},
		{"XRead negative count", func(ctx context.Context) error { _, err := s.XRead(ctx, "s", "", -1, 0); return err }},
		{"XRevRange malformed ID", func(ctx context.Context) error { _, err := s.XRevRange(ctx, "s", "1-x", 10); return err }},
		{"XAck malformed ID", func(ctx context.Context) error { return s.XAck(ctx, "s", "g", "bogus") }},
		{"XGroupCreate malformed start", func(ctx context.Context) error { return s.XGroupCreate(ctx, "s", "g", "nope") }},
		{"GeoNearest negative k", func(ctx context.Context) error { _, err := s.GeoNearest(ctx, "geo", 0, 0, 1000, -1); return err }},
		{"GeoNearest negative radius", func(ctx context.Context) error { _, err := s.GeoNearest(ctx, "geo", 0, 0, -1, 10); return err }},
	}
	for _, c := range calls {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := c.call(cctx)
		cancel()
		wantErr(t, err, state.ErrInvalidArgument, c.name)
	}
}
