package statetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchboard/switchboard/state"
)

var closeCases = []testCase{
	{"EveryMethodAfterClose", testClosed},
	{"WakesBlockedReaders", testCloseWakesReaders},
}

// everyMethod calls each method of state.Store once with valid arguments.
func everyMethod(s state.Store) map[string]func(ctx context.Context) error {
	p := state.GeoPoint{Member: "m", Lat: 1, Lon: 1}
	return map[string]func(ctx context.Context) error{
		"Ping":             func(ctx context.Context) error { return s.Ping(ctx) },
		"Get":              func(ctx context.Context) error { _, err := s.Get(ctx, "k"); return err },
		"GetMany":          func(ctx context.Context) error { _, err := s.GetMany(ctx, "k", "j"); return err },
		"Set":              func(ctx context.Context) error { return s.Set(ctx, "k", []byte("v"), 0) },
		"SetNX":            func(ctx context.Context) error { _, err := s.SetNX(ctx, "k", []byte("v"), 0); return err },
		"CompareAndSwap":   func(ctx context.Context) error { _, err := s.CompareAndSwap(ctx, "k", nil, []byte("v"), 0); return err },
		"CompareAndDelete": func(ctx context.Context) error { _, err := s.CompareAndDelete(ctx, "k", []byte("v")); return err },
		"Delete":           func(ctx context.Context) error { return s.Delete(ctx, "k") },
		"Incr":             func(ctx context.Context) error { _, err := s.Incr(ctx, "n", 1, 0); return err },
		"ZAdd":             func(ctx context.Context) error { return s.ZAdd(ctx, "i", "m", 1) },
		"ZRem":             func(ctx context.Context) error { _, err := s.ZRem(ctx, "i", "m"); return err },
		"ZScore":           func(ctx context.Context) error { _, err := s.ZScore(ctx, "i", "m"); return err },
		"ZRange":           func(ctx context.Context) error { _, err := s.ZRange(ctx, "i", all); return err },
		"ZPopMin":          func(ctx context.Context) error { _, err := s.ZPopMin(ctx, "i", 1); return err },
		"ZCard":            func(ctx context.Context) error { _, err := s.ZCard(ctx, "i"); return err },
		"XAdd":             func(ctx context.Context) error { _, err := s.XAdd(ctx, "s", []byte("v")); return err },
		"XRead":            func(ctx context.Context) error { _, err := s.XRead(ctx, "s", "", 10, 0); return err },
		"XRevRange":        func(ctx context.Context) error { _, err := s.XRevRange(ctx, "s", "", 10); return err },
		"XLen":             func(ctx context.Context) error { _, err := s.XLen(ctx, "s"); return err },
		"XGroupCreate":     func(ctx context.Context) error { return s.XGroupCreate(ctx, "s", "g", "0") },
		"XReadGroup":       func(ctx context.Context) error { _, err := s.XReadGroup(ctx, "s", "g", "c", 10, 0); return err },
		"XAck":             func(ctx context.Context) error { return s.XAck(ctx, "s", "g", "1-0") },
		"XAutoClaim":       func(ctx context.Context) error { _, err := s.XAutoClaim(ctx, "s", "g", "c", 0, 10); return err },
		"GeoAdd":           func(ctx context.Context) error { return s.GeoAdd(ctx, "geo", p) },
		"GeoRemove":        func(ctx context.Context) error { return s.GeoRemove(ctx, "geo", "m") },
		"GeoPos":           func(ctx context.Context) error { _, err := s.GeoPos(ctx, "geo", "m"); return err },
		"GeoNearest":       func(ctx context.Context) error { _, err := s.GeoNearest(ctx, "geo", 1, 1, 1000, 10); return err },
		"Publish":          func(ctx context.Context) error { return s.Publish(ctx, "c", []byte("v")) },
		"Apply": func(ctx context.Context) error {
			_, err := s.Apply(ctx, nil, state.ZAddOp{Index: "i", Member: "m", Score: 1})
			return err
		},
		"Subscribe": func(ctx context.Context) error {
			sub, err := s.Subscribe(ctx, "c")
			if err == nil {
				sub.Close()
			}
			return err
		},
	}
}

func testClosed(t *testing.T, s state.Store) {
	ctx := testContext(t)
	must(t, s.Ping(ctx), "Ping before Close")
	// Give every method something to find, so "closed" is not confused
	// with "absent".
	for name, call := range everyMethod(s) {
		if err := call(ctx); err != nil && !errors.Is(err, state.ErrNotFound) {
			t.Fatalf("%s before Close: %v", name, err)
		}
	}
	must(t, s.Close(), "Close")
	must(t, s.Close(), "Close twice")
	for name, call := range everyMethod(s) {
		wantErr(t, call(ctx), state.ErrClosed, name+" after Close")
	}
}

func testCloseWakesReaders(t *testing.T, s state.Store) {
	ctx := testContext(t)
	must(t, s.XGroupCreate(ctx, "s", "g", "$"), "XGroupCreate")
	res := make(chan error, 2)
	go func() {
		_, err := s.XRead(ctx, "s", "", 10, longBlock)
		res <- err
	}()
	go func() {
		_, err := s.XReadGroup(ctx, "s", "g", "c", 10, longBlock)
		res <- err
	}()
	time.Sleep(letReaderBlock) // coverage only: a reader not yet blocked sees ErrClosed at once
	must(t, s.Close(), "Close")
	for range 2 {
		select {
		case err := <-res:
			wantErr(t, err, state.ErrClosed, "blocked read when the store closed")
		case <-time.After(waitFor):
			t.Fatal("blocked read not woken by Close")
		}
	}
}
