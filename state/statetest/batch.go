package statetest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/state"
)

var batchCases = []testCase{
	{"GetMany", testGetMany},
	{"WritesEveryKind", testApplyWrites},
	{"InOrder", testApplyOrder},
	{"Swap", testApplySwap},
	{"SwapRace", testApplySwapRace},
	{"ReadWhole", testApplyReadWhole},
	{"RefusesWhole", testApplyRefusesWhole},
	{"ZRemRange", testApplyZRemRange},
}

// members returns the members of index in order.
func members(t testing.TB, s state.Store, index string) []string {
	t.Helper()
	got, err := s.ZRange(testContext(t), index, all)
	must(t, err, "ZRange "+index)
	out := make([]string, len(got))
	for i, m := range got {
		out[i] = m.Member
	}
	return out
}

func testGetMany(t *testing.T, s state.Store) {
	ctx := testContext(t)
	got, err := s.GetMany(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("GetMany of no keys: got %q, %v; want none", got, err)
	}
	bin := []byte{0, 1, 0xff, 0, '\n'}
	must(t, s.Set(ctx, "a", []byte("va"), 0), "Set a")
	must(t, s.Set(ctx, "bin", bin, 0), "Set bin")
	must(t, s.Set(ctx, "empty", []byte{}, 0), "Set empty")
	must(t, s.Set(ctx, "short", []byte("gone soon"), shortTTL), "Set short")
	_, err = s.Incr(ctx, "counter", 1, 0)
	must(t, err, "Incr counter")
	checkFor(t, waitFor, 10*time.Millisecond, func() error { return isAbsent(ctx, s, "short") })

	keys := []string{"empty", "absent", "a", "bin", "short", "a", "counter"}
	got, err = s.GetMany(ctx, keys...)
	must(t, err, "GetMany")
	want := [][]byte{{}, nil, []byte("va"), bin, nil, []byte("va"), nil}
	if len(got) != len(want) {
		t.Fatalf("GetMany: got %d values for %d keys", len(got), len(keys))
	}
	for i, w := range want {
		// Absent (nil) and empty are told apart; a counter is not a value.
		if (got[i] == nil) != (w == nil) || !bytes.Equal(got[i], w) {
			t.Fatalf("GetMany %s: got %q (nil %v), want %q (nil %v)", keys[i], got[i], got[i] == nil, w, w == nil)
		}
	}
	// The values are the caller's: changing one changes nothing stored.
	got[2][0] = 'X'
	if v := getString(t, ctx, s, "a"); v != "va" {
		t.Fatalf("Get a after changing GetMany's copy: got %q", v)
	}
}

func testApplyWrites(t *testing.T, s state.Store) {
	ctx := testContext(t)
	ok, err := s.Apply(ctx, nil)
	if err != nil || !ok {
		t.Fatalf("Apply of nothing: got %v, %v; want true", ok, err)
	}
	ok, err = s.Apply(ctx, nil,
		state.SetOp{Key: "k", Value: []byte("v")},
		state.SetOp{Key: "short", Value: []byte("gone soon"), TTL: shortTTL},
		state.ZAddOp{Index: "i", Member: "m", Score: 7},
		state.GeoAddOp{Set: "geo", Points: []state.GeoPoint{{Member: "p", Lat: 52.5, Lon: 13.4}}},
		state.GeoAddOp{Set: "empty-geo"},
	)
	if err != nil || !ok {
		t.Fatalf("Apply: got %v, %v; want true", ok, err)
	}
	if got := getString(t, ctx, s, "k"); got != "v" {
		t.Fatalf("Get k: got %q, want v", got)
	}
	if got, err := s.ZScore(ctx, "i", "m"); err != nil || got != 7 {
		t.Fatalf("ZScore: got %v, %v; want 7", got, err)
	}
	p, err := s.GeoPos(ctx, "geo", "p")
	must(t, err, "GeoPos")
	if d := state.Distance(p.Lat, p.Lon, 52.5, 13.4); d > posTolerance {
		t.Fatalf("GeoPos: %v is %.2f m from where it was put", p, d)
	}
	if got, err := s.GeoNearest(ctx, "geo", 52.5, 13.4, 1000, 0); err != nil || len(got) != 1 {
		t.Fatalf("GeoNearest: got %v, %v; want p", got, err)
	}
	if got, err := s.GeoNearest(ctx, "empty-geo", 52.5, 13.4, 1e6, 0); err != nil || len(got) != 0 {
		t.Fatalf("GeoNearest in a set given no points: got %v, %v; want none", got, err)
	}
	// The TTL of a SetOp is a TTL, as Set's.
	checkFor(t, waitFor, 10*time.Millisecond, func() error { return isAbsent(ctx, s, "short") })
	if got := getString(t, ctx, s, "k"); got != "v" {
		t.Fatalf("Get k after short expired: got %q, want v", got)
	}
}

func testApplyOrder(t *testing.T, s state.Store) {
	ctx := testContext(t)
	_, err := s.Apply(ctx, nil,
		state.SetOp{Key: "k", Value: []byte("first")},
		state.ZAddOp{Index: "i", Member: "a", Score: 1},
		state.ZAddOp{Index: "i", Member: "b", Score: 2},
		state.ZRemRangeOp{Index: "i", Min: 0, Max: 1.5},
		state.ZAddOp{Index: "i", Member: "c", Score: 1},
		state.SetOp{Key: "k", Value: []byte("second")},
	)
	must(t, err, "Apply")
	if got := getString(t, ctx, s, "k"); got != "second" {
		t.Fatalf("Get k: got %q, want the later write, second", got)
	}
	// a was removed by the range that ran after it; c came after the range.
	if got := members(t, s, "i"); !slices.Equal(got, []string{"c", "b"}) {
		t.Fatalf("index: got %v, want [c b]", got)
	}
}

func testApplySwap(t *testing.T, s state.Store) {
	ctx := testContext(t)
	swap := func(old, value string, oldNil bool, member string) bool {
		t.Helper()
		sw := &state.Swap{Key: "rec", Old: []byte(old), New: []byte(value)}
		if oldNil {
			sw.Old = nil
		}
		ok, err := s.Apply(ctx, sw, state.ZAddOp{Index: "log", Member: member, Score: 1}, state.SetOp{Key: "side-" + member, Value: []byte("x")})
		must(t, err, "Apply with swap "+member)
		return ok
	}
	steps := []struct {
		old, value string
		oldNil     bool
		member     string
		want       bool
	}{
		{"", "v1", true, "1", true},     // absent: nil Old swaps
		{"", "v2", true, "2", false},    // present: nil Old does not
		{"v0", "v2", false, "3", false}, // wrong Old
		{"v1", "v2", false, "4", true},  // right Old
		{"", "v3", false, "5", false},   // empty Old is not "absent", nor "v2"
		{"v2", "", false, "6", true},    // to an empty value...
		{"", "v7", false, "7", true},    // ...which an empty Old matches
	}
	var applied []string
	for _, st := range steps {
		if got := swap(st.old, st.value, st.oldNil, st.member); got != st.want {
			t.Fatalf("swap %q -> %q (nil old %v): got %v, want %v", st.old, st.value, st.oldNil, got, st.want)
		}
		if st.want {
			applied = append(applied, st.member)
		} else if err := isAbsent(ctx, s, "side-"+st.member); err != nil {
			t.Fatalf("a swap that did not swap wrote its ops: %v", err)
		}
	}
	if got := getString(t, ctx, s, "rec"); got != "v7" {
		t.Fatalf("Get rec: got %q, want v7", got)
	}
	if got := members(t, s, "log"); !slices.Equal(got, applied) {
		t.Fatalf("ops written: got %v, want those of the swaps that swapped, %v", got, applied)
	}

	// The swap's TTL applies to its key.
	ok, err := s.Apply(ctx, &state.Swap{Key: "rec", Old: []byte("v7"), New: []byte("v8"), TTL: shortTTL})
	if err != nil || !ok {
		t.Fatalf("Apply swap with TTL: got %v, %v", ok, err)
	}
	checkFor(t, waitFor, 10*time.Millisecond, func() error { return isAbsent(ctx, s, "rec") })
}

// testApplySwapRace has racers each read a counter and Apply counter+1
// with its own member in an index, retrying lost races: if the swap and
// the ops were not one atomic step, members and the count would disagree.
func testApplySwapRace(t *testing.T, s state.Store) {
	ctx := testContext(t)
	var lost atomic.Int64
	errs := make(chan error, racers)
	race(racers, func(i int) {
		for {
			var old []byte
			n := 0
			v, err := s.Get(ctx, "count")
			switch {
			case err == nil:
				old = v
				n, _ = strconv.Atoi(string(v))
			case !errors.Is(err, state.ErrNotFound):
				errs <- err
				return
			}
			ok, err := s.Apply(ctx, &state.Swap{Key: "count", Old: old, New: []byte(strconv.Itoa(n + 1))},
				state.ZAddOp{Index: "who", Member: fmt.Sprintf("r%02d", i), Score: float64(n + 1)})
			if err != nil {
				errs <- err
				return
			}
			if ok {
				return
			}
			lost.Add(1)
		}
	})
	close(errs)
	for err := range errs {
		t.Fatalf("Apply: %v", err)
	}
	if got := getString(t, ctx, s, "count"); got != strconv.Itoa(racers) {
		t.Fatalf("count: got %s, want %d", got, racers)
	}
	got, err := s.ZRange(ctx, "who", all)
	must(t, err, "ZRange")
	if len(got) != racers {
		t.Fatalf("index: got %d members, want one per racer (%d)", len(got), racers)
	}
	// Each winner saw a distinct count: scores are 1..racers.
	for i, m := range got {
		if m.Score != float64(i+1) {
			t.Fatalf("index member %d: score %v, want %d (two winners saw the same count)", i, m.Score, i+1)
		}
	}
	t.Logf("%d lost races retried", lost.Load())
}

// testApplyReadWhole: a reader never sees half of an Apply. One writer
// applies a pair of keys with the same value again and again, readers
// GetMany them meanwhile: the two values must always be equal.
func testApplyReadWhole(t *testing.T, s state.Store) {
	ctx := testContext(t)
	const rounds = 50
	var werr error
	stop := make(chan struct{})
	go func() {
		defer close(stop)
		for i := range rounds {
			v := []byte(strconv.Itoa(i))
			if _, werr = s.Apply(ctx, nil, state.SetOp{Key: "a", Value: v}, state.SetOp{Key: "b", Value: v}); werr != nil {
				return
			}
		}
	}()
	var reads, torn atomic.Int64
	errs := make(chan error, 4)
	race(4, func(int) {
		for {
			select {
			case <-stop:
				return
			default:
			}
			vs, err := s.GetMany(ctx, "a", "b")
			if err != nil {
				errs <- err
				return
			}
			reads.Add(1)
			if !bytes.Equal(vs[0], vs[1]) {
				torn.Add(1)
			}
		}
	})
	<-stop
	must(t, werr, "Apply")
	close(errs)
	for err := range errs {
		t.Fatalf("GetMany: %v", err)
	}
	if n := torn.Load(); n > 0 {
		t.Fatalf("%d of %d reads saw one key of an Apply without the other", n, reads.Load())
	}
	if got := getString(t, ctx, s, "b"); got != strconv.Itoa(rounds-1) {
		t.Fatalf("b: got %s, want %d", got, rounds-1)
	}
}

func testApplyRefusesWhole(t *testing.T, s state.Store) {
	ctx := testContext(t)
	must(t, s.Set(ctx, "rec", []byte("v1"), 0), "Set")
	swap := &state.Swap{Key: "rec", Old: []byte("v1"), New: []byte("v2")}
	good := []state.Op{
		state.SetOp{Key: "k", Value: []byte("v")},
		state.ZAddOp{Index: "i", Member: "m", Score: 1},
		state.GeoAddOp{Set: "geo", Points: []state.GeoPoint{{Member: "p", Lat: 1, Lon: 1}}},
	}
	bad := []struct {
		name string
		op   state.Op
		err  error
	}{
		{"bad coordinates", state.GeoAddOp{Set: "geo", Points: []state.GeoPoint{{Member: "q", Lat: 91, Lon: 0}}}, state.ErrInvalidCoordinates},
		{"empty geo member", state.GeoAddOp{Set: "geo", Points: []state.GeoPoint{{Lat: 1, Lon: 1}}}, state.ErrInvalidArgument},
		{"NaN score", state.ZAddOp{Index: "i", Member: "n", Score: math.NaN()}, state.ErrInvalidArgument},
		{"empty member", state.ZAddOp{Index: "i", Score: 1}, state.ErrInvalidArgument},
		{"empty key", state.SetOp{Value: []byte("v")}, state.ErrInvalidArgument},
		{"negative TTL", state.SetOp{Key: "k2", Value: []byte("v"), TTL: -time.Second}, state.ErrInvalidArgument},
		{"NaN bound", state.ZRemRangeOp{Index: "i", Min: math.NaN(), Max: 1}, state.ErrInvalidArgument},
		{"negative limit", state.ZRemRangeOp{Index: "i", Min: 0, Max: 1, Limit: -1}, state.ErrInvalidArgument},
		{"nil op", nil, state.ErrInvalidArgument},
	}
	for _, b := range bad {
		for _, sw := range []*state.Swap{nil, swap} {
			_, err := s.Apply(ctx, sw, append(slices.Clone(good), b.op)...)
			wantErr(t, err, b.err, fmt.Sprintf("Apply with %s (swap %v)", b.name, sw != nil))
		}
	}
	_, err := s.Apply(ctx, &state.Swap{Key: "", New: []byte("v")}, good...)
	wantErr(t, err, state.ErrInvalidArgument, "Apply with an empty swap key")
	_, err = s.Apply(ctx, &state.Swap{Key: "rec", Old: []byte("v1"), New: []byte("v2"), TTL: -time.Second}, good...)
	wantErr(t, err, state.ErrInvalidArgument, "Apply with a negative swap TTL")

	// Nothing of any refused call was written.
	if got := getString(t, ctx, s, "rec"); got != "v1" {
		t.Fatalf("swap key after refused calls: got %q, want v1", got)
	}
	if err := isAbsent(ctx, s, "k"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ZCard(ctx, "i"); err != nil || n != 0 {
		t.Fatalf("ZCard after refused calls: got %d, %v; want 0", n, err)
	}
	_, err = s.GeoPos(ctx, "geo", "p")
	wantErr(t, err, state.ErrNotFound, "GeoPos after refused calls")
}

func testApplyZRemRange(t *testing.T, s state.Store) {
	ctx := testContext(t)
	for i := 1; i <= 10; i++ {
		must(t, s.ZAdd(ctx, "i", fmt.Sprintf("m%02d", i), float64(i)), "ZAdd")
	}
	// Ties go in member order, as in ZRange.
	for _, m := range []string{"t-c", "t-a", "t-b"} {
		must(t, s.ZAdd(ctx, "i", m, 5), "ZAdd tie")
	}
	steps := []struct {
		op   state.ZRemRangeOp
		want []string
	}{
		// Inclusive bounds, lowest first, at most Limit.
		{state.ZRemRangeOp{Min: 2, Max: 8, Limit: 3}, []string{"m01", "m05", "t-a", "t-b", "t-c", "m06", "m07", "m08", "m09", "m10"}},
		{state.ZRemRangeOp{Min: 5, Max: 5, Limit: 2}, []string{"m01", "t-b", "t-c", "m06", "m07", "m08", "m09", "m10"}},
		{state.ZRemRangeOp{Min: 9, Max: 1}, []string{"m01", "t-b", "t-c", "m06", "m07", "m08", "m09", "m10"}}, // empty range
		{state.ZRemRangeOp{Min: math.Inf(-1), Max: 6}, []string{"m07", "m08", "m09", "m10"}},                  // 0: no limit
		{state.ZRemRangeOp{Min: 9.5, Max: math.Inf(1), Limit: 100}, []string{"m07", "m08", "m09"}},
		{state.ZRemRangeOp{Min: math.Inf(-1), Max: math.Inf(1)}, []string{}},
	}
	for i, st := range steps {
		st.op.Index = "i"
		ok, err := s.Apply(ctx, nil, st.op)
		if err != nil || !ok {
			t.Fatalf("step %d: Apply %+v: got %v, %v", i, st.op, ok, err)
		}
		if got := members(t, s, "i"); !slices.Equal(got, st.want) {
			t.Fatalf("step %d: after %+v: got %v, want %v", i, st.op, got, st.want)
		}
	}
	if n, err := s.ZCard(ctx, "i"); err != nil || n != 0 {
		t.Fatalf("ZCard of an emptied index: got %d, %v; want 0", n, err)
	}
	// An absent index is no error.
	if _, err := s.Apply(ctx, nil, state.ZRemRangeOp{Index: "absent", Min: 0, Max: 1}); err != nil {
		t.Fatalf("ZRemRange of an absent index: %v", err)
	}
}
