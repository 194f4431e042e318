package statetest

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/state"
)

var indexCases = []testCase{
	{"Basics", testZBasics},
	{"RangeOrder", testZRangeOrder},
	{"RangeOffsetLimit", testZRangeOffsetLimit},
	{"PopMin", testZPopMin},
	{"PopMinConcurrent", testZPopMinConcurrent},
}

// all is the range that selects every member.
var all = state.RangeOptions{Min: math.Inf(-1), Max: math.Inf(1)}

func testZBasics(t *testing.T, s state.Store) {
	ctx := testContext(t)
	if n, err := s.ZCard(ctx, "idx"); err != nil || n != 0 {
		t.Fatalf("ZCard absent index: got %d, %v; want 0", n, err)
	}
	_, err := s.ZScore(ctx, "idx", "a")
	wantErr(t, err, state.ErrNotFound, "ZScore absent member")
	if got, err := s.ZRange(ctx, "idx", all); err != nil || len(got) != 0 {
		t.Fatalf("ZRange absent index: got %v, %v; want empty", got, err)
	}

	must(t, s.ZAdd(ctx, "idx", "a", 1), "ZAdd a")
	must(t, s.ZAdd(ctx, "idx", "b", 2), "ZAdd b")
	must(t, s.ZAdd(ctx, "idx", "a", 3), "ZAdd a again") // moves a, adds nothing
	if n, err := s.ZCard(ctx, "idx"); err != nil || n != 2 {
		t.Fatalf("ZCard: got %d, %v; want 2", n, err)
	}
	if sc, err := s.ZScore(ctx, "idx", "a"); err != nil || sc != 3 {
		t.Fatalf("ZScore a: got %v, %v; want 3", sc, err)
	}
	got, err := s.ZRange(ctx, "idx", all)
	must(t, err, "ZRange")
	want := []state.ScoredMember{{Member: "b", Score: 2}, {Member: "a", Score: 3}}
	if !slices.Equal(got, want) {
		t.Fatalf("ZRange after move: got %v, want %v", got, want)
	}

	if ok, err := s.ZRem(ctx, "idx", "a"); err != nil || !ok {
		t.Fatalf("ZRem present: got %v, %v; want true", ok, err)
	}
	if ok, err := s.ZRem(ctx, "idx", "a"); err != nil || ok {
		t.Fatalf("ZRem absent: got %v, %v; want false", ok, err)
	}
	if ok, err := s.ZRem(ctx, "other", "a"); err != nil || ok {
		t.Fatalf("ZRem on absent index: got %v, %v; want false", ok, err)
	}
	if n, err := s.ZCard(ctx, "idx"); err != nil || n != 1 {
		t.Fatalf("ZCard after ZRem: got %d, %v; want 1", n, err)
	}
	_, err = s.ZScore(ctx, "idx", "a")
	wantErr(t, err, state.ErrNotFound, "ZScore removed member")

	// Indexes are independent of each other.
	must(t, s.ZAdd(ctx, "other", "b", 9), "ZAdd other")
	if sc, err := s.ZScore(ctx, "idx", "b"); err != nil || sc != 2 {
		t.Fatalf("ZScore idx b: got %v, %v; want 2", sc, err)
	}
}

// rangeFixture is an index with ties, negative and fractional scores.
var rangeFixture = []state.ScoredMember{
	{Member: "b", Score: 1}, {Member: "a", Score: 1}, {Member: "c", Score: 1},
	{Member: "neg", Score: -5.5}, {Member: "y", Score: 2.5}, {Member: "big", Score: 1e12},
	{Member: "zero", Score: 0}, {Member: "B", Score: 1}, // "B" < "a" byte-wise
}

func addAll(t *testing.T, s state.Store, index string, members []state.ScoredMember) {
	t.Helper()
	ctx := testContext(t)
	for _, m := range members {
		must(t, s.ZAdd(ctx, index, m.Member, m.Score), "ZAdd "+m.Member)
	}
}

// sortedFixture is rangeFixture in the contract's order: by score, ties
// by member byte-wise.
func sortedFixture() []state.ScoredMember {
	out := slices.Clone(rangeFixture)
	slices.SortFunc(out, func(x, y state.ScoredMember) int {
		return cmp.Or(cmp.Compare(x.Score, y.Score), cmp.Compare(x.Member, y.Member))
	})
	return out
}

func testZRangeOrder(t *testing.T, s state.Store) {
	ctx := testContext(t)
	addAll(t, s, "idx", rangeFixture)
	sorted := sortedFixture()
	reversed := slices.Clone(sorted)
	slices.Reverse(reversed)

	sel := func(lo, hi float64) []state.ScoredMember {
		var out []state.ScoredMember
		for _, m := range sorted {
			if m.Score >= lo && m.Score <= hi {
				out = append(out, m)
			}
		}
		return out
	}
	inf := math.Inf(1)
	cases := []struct {
		name string
		opt  state.RangeOptions
		want []state.ScoredMember
	}{
		{"all", all, sorted},
		{"reverse is the forward order backwards", state.RangeOptions{Min: -inf, Max: inf, Reverse: true}, reversed},
		{"inclusive bounds", state.RangeOptions{Min: 1, Max: 2.5}, sel(1, 2.5)},
		{"ties only", state.RangeOptions{Min: 1, Max: 1}, sel(1, 1)},
		{"open low end", state.RangeOptions{Min: -inf, Max: 0}, sel(-inf, 0)},
		{"open high end", state.RangeOptions{Min: 2, Max: inf}, sel(2, inf)},
		{"empty interval", state.RangeOptions{Min: 3, Max: 4}, nil},
		{"min above max", state.RangeOptions{Min: 5, Max: 1}, nil},
		{"reverse bounded", state.RangeOptions{Min: 0, Max: 1, Reverse: true}, reverse(sel(0, 1))},
	}
	for _, c := range cases {
		got, err := s.ZRange(ctx, "idx", c.opt)
		must(t, err, "ZRange "+c.name)
		if len(got) != 0 || len(c.want) != 0 {
			if !slices.Equal(got, c.want) {
				t.Errorf("ZRange %s (%+v):\n got %v\nwant %v", c.name, c.opt, got, c.want)
			}
		}
	}
}

func reverse(in []state.ScoredMember) []state.ScoredMember {
	out := slices.Clone(in)
	slices.Reverse(out)
	return out
}

func testZRangeOffsetLimit(t *testing.T, s state.Store) {
	ctx := testContext(t)
	addAll(t, s, "idx", rangeFixture)
	sorted := sortedFixture()
	reversed := reverse(sorted)
	window := func(in []state.ScoredMember, off, lim int) []state.ScoredMember {
		if off >= len(in) {
			return nil
		}
		in = in[off:]
		if lim > 0 && lim < len(in) {
			in = in[:lim]
		}
		return in
	}
	inf := math.Inf(1)
	for _, rev := range []bool{false, true} {
		base := sorted
		if rev {
			base = reversed
		}
		for _, w := range []struct{ off, lim int }{{0, 0}, {0, 3}, {1, 3}, {2, 100}, {7, 0}, {7, 5}, {8, 1}, {50, 2}} {
			opt := state.RangeOptions{Min: -inf, Max: inf, Reverse: rev, Offset: w.off, Limit: w.lim}
			got, err := s.ZRange(ctx, "idx", opt)
			must(t, err, "ZRange")
			want := window(base, w.off, w.lim)
			if (len(got) != 0 || len(want) != 0) && !slices.Equal(got, want) {
				t.Errorf("ZRange %+v:\n got %v\nwant %v", opt, got, want)
			}
		}
	}
	// Paging through ties with Offset visits every member once.
	var paged []state.ScoredMember
	for off := 0; ; off += 3 {
		page, err := s.ZRange(ctx, "idx", state.RangeOptions{Min: 1, Max: 1, Offset: off, Limit: 3})
		must(t, err, "ZRange page")
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
	}
	var ties []state.ScoredMember
	for _, m := range sorted {
		if m.Score == 1 {
			ties = append(ties, m)
		}
	}
	if !slices.Equal(paged, ties) {
		t.Fatalf("paging ties: got %v, want %v", paged, ties)
	}
}

func testZPopMin(t *testing.T, s state.Store) {
	ctx := testContext(t)
	if got, err := s.ZPopMin(ctx, "idx", 3); err != nil || len(got) != 0 {
		t.Fatalf("ZPopMin absent index: got %v, %v; want empty", got, err)
	}
	addAll(t, s, "idx", rangeFixture)
	sorted := sortedFixture()
	got, err := s.ZPopMin(ctx, "idx", 3)
	must(t, err, "ZPopMin 3")
	if !slices.Equal(got, sorted[:3]) {
		t.Fatalf("ZPopMin 3: got %v, want %v", got, sorted[:3])
	}
	if n, err := s.ZCard(ctx, "idx"); err != nil || n != int64(len(sorted)-3) {
		t.Fatalf("ZCard after pop: got %d, %v; want %d", n, err, len(sorted)-3)
	}
	if got, err := s.ZPopMin(ctx, "idx", 0); err != nil || len(got) != 0 {
		t.Fatalf("ZPopMin 0: got %v, %v; want empty", got, err)
	}
	got, err = s.ZPopMin(ctx, "idx", 100)
	must(t, err, "ZPopMin 100")
	if !slices.Equal(got, sorted[3:]) {
		t.Fatalf("ZPopMin rest: got %v, want %v", got, sorted[3:])
	}
	if n, err := s.ZCard(ctx, "idx"); err != nil || n != 0 {
		t.Fatalf("ZCard after popping all: got %d, %v; want 0", n, err)
	}
}

func testZPopMinConcurrent(t *testing.T, s state.Store) {
	ctx := testContext(t)
	const members, poppers, batch = 300, 10, 7
	for i := range members {
		must(t, s.ZAdd(ctx, "queue", fmt.Sprintf("m%03d", i), float64(i%17)), "ZAdd")
	}
	var mu sync.Mutex
	seen := make(map[string]int)
	var firstErr error
	race(poppers, func(int) {
		for {
			got, err := s.ZPopMin(ctx, "queue", batch)
			mu.Lock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			for _, m := range got {
				seen[m.Member]++
			}
			mu.Unlock()
			if err != nil || len(got) == 0 {
				return
			}
			// Each batch is itself ordered by score.
			for i := 1; i < len(got); i++ {
				if got[i].Score < got[i-1].Score {
					mu.Lock()
					firstErr = fmt.Errorf("batch out of order: %v", got)
					mu.Unlock()
					return
				}
			}
		}
	})
	must(t, firstErr, "ZPopMin")
	if len(seen) != members {
		t.Fatalf("popped %d distinct members, want %d", len(seen), members)
	}
	for m, n := range seen {
		if n != 1 {
			t.Fatalf("member %s popped %d times, want exactly once", m, n)
		}
	}
}
