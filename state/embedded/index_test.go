package embedded

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/switchboard/switchboard/state"
)

// TestIDMembersInScoreTreeOnly checks the implicit member: a stream-ID
// member at its millisecond has no member key, and moving it off that
// score and back adds and drops the key, with every read agreeing.
func TestIDMembersInScoreTreeOnly(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := context.Background()
	const idx, m = "tl:1", "1700-0000000001"
	hasKey := func() bool {
		var ok bool
		_ = s.view(ctx, func(tx *bolt.Tx) error {
			ok = tx.Bucket(bucketIxMembers).Get(openIndex(tx, []byte(idx)).memberKey([]byte(m))) != nil
			return nil
		})
		return ok
	}
	check := func(step string, score float64, explicit bool) {
		t.Helper()
		if got, err := s.ZScore(ctx, idx, m); err != nil || got != score {
			t.Fatalf("%s: ZScore = %v, %v; want %v", step, got, err, score)
		}
		if n, _ := s.ZCard(ctx, idx); n != 1 {
			t.Fatalf("%s: ZCard = %d, want 1", step, n)
		}
		got, _ := s.ZRange(ctx, idx, state.RangeOptions{Min: -1e18, Max: 1e18})
		if len(got) != 1 || got[0] != (state.ScoredMember{Member: m, Score: score}) {
			t.Fatalf("%s: ZRange = %+v", step, got)
		}
		if hasKey() != explicit {
			t.Fatalf("%s: member key present = %v, want %v", step, !explicit, explicit)
		}
	}
	for _, step := range []struct {
		name     string
		score    float64
		explicit bool
	}{{"at its millisecond", 1700, false}, {"moved off it", 5, true}, {"moved back", 1700, false}} {
		if err := s.ZAdd(ctx, idx, m, step.score); err != nil {
			t.Fatal(err)
		}
		check(step.name, step.score, step.explicit)
	}
	if ok, err := s.ZRem(ctx, idx, m); !ok || err != nil {
		t.Fatalf("ZRem = %v, %v", ok, err)
	}
	if _, err := s.ZScore(ctx, idx, m); err == nil {
		t.Fatal("ZScore after ZRem found the member")
	}
	for _, name := range []string{"12-", "-3", "a-1", "12", "1-2-3"} {
		if _, ok := implicitScore([]byte(name)); ok {
			t.Errorf("%q taken for a stream ID", name)
		}
	}
}

// TestMergedAppends: many XAddIndexed calls at once, so the committer
// merges them into runs, leave the indexes as writing them one by one
// would: every entry on its timeline in ID order, and a list member that
// every entry moves at the score of the newest entry.
func TestMergedAppends(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := context.Background()
	const writers, each = 64, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				entry := state.IndexedEntry{Value: []byte("e"), Indexes: []state.IndexEntry{
					{Index: "tl:all"}, {Index: fmt.Sprintf("tl:%d", w%4)}, {Index: "list", Member: "ticket"}}}
				if _, err := s.XAddIndexed(ctx, "events", entry); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all, err := s.XRead(ctx, "events", "0", 0, 0)
	if err != nil || len(all) != writers*each {
		t.Fatalf("stream holds %d entries, %v; want %d", len(all), err, writers*each)
	}
	tl, _ := s.ZRange(ctx, "tl:all", state.RangeOptions{Min: 0, Max: math.Inf(1)})
	if len(tl) != len(all) {
		t.Fatalf("timeline holds %d entries, want %d", len(tl), len(all))
	}
	for i, e := range all {
		id, _ := state.ParseID(e.ID)
		if want := state.IDMember(id); tl[i].Member != want || tl[i].Score != float64(id.Ms) {
			t.Fatalf("timeline[%d] = %+v, want %s at %d", i, tl[i], want, id.Ms)
		}
	}
	var n int64
	for i := range 4 {
		c, _ := s.ZCard(ctx, fmt.Sprintf("tl:%d", i))
		n += c
	}
	if n != int64(len(all)) {
		t.Fatalf("the four timelines hold %d entries, want %d", n, len(all))
	}
	last, _ := state.ParseID(all[len(all)-1].ID)
	if got, err := s.ZScore(ctx, "list", "ticket"); err != nil || got != float64(last.Ms) {
		t.Fatalf("list score %v, %v; want the newest entry's %d", got, err, last.Ms)
	}
	if c, _ := s.ZCard(ctx, "list"); c != 1 {
		t.Fatalf("list holds %d members, want 1", c)
	}
}

// TestIDKeysCounted: the header counts the stream-ID members that have a
// member key, exactly, whichever way one leaves. Two are moved off their
// millisecond, one leaves, and the other moved back must still be found
// (a count that fell to 0 too soon would make it a second member).
func TestIDKeysCounted(t *testing.T) {
	ctx := context.Background()
	const a, b = "1700-0000000001", "1800-0000000001"
	for name, leave := range map[string]func(s *Store) error{
		"zrem": func(s *Store) error { _, err := s.ZRem(ctx, "i", a); return err },
		"zpopmin": func(s *Store) error {
			_, err := s.ZPopMin(ctx, "i", 1)
			return err
		},
		"zremrange": func(s *Store) error {
			_, err := s.Apply(ctx, nil, state.ZRemRangeOp{Index: "i", Min: 0, Max: 5})
			return err
		},
		"moved back": func(s *Store) error { return s.ZAdd(ctx, "i", a, 1700) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir)
			for _, m := range []string{a, b} {
				if err := s.ZAdd(ctx, "i", m, 5); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.ZAdd(ctx, "i", b, 6); err != nil { // b stays off its millisecond, above a
				t.Fatal(err)
			}
			if err := leave(s); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s = openT(t, dir) // the count is on disk
			if err := s.ZAdd(ctx, "i", b, 1800); err != nil {
				t.Fatal(err)
			}
			got, _ := s.ZRange(ctx, "i", state.RangeOptions{Min: 0, Max: 1e6})
			want := 1
			if name == "moved back" {
				want = 2
			}
			if n, _ := s.ZCard(ctx, "i"); len(got) != want || n != int64(want) {
				t.Fatalf("after %s and moving %s back: %+v, ZCard %d; want %d members", name, b, got, n, want)
			}
			if last := got[len(got)-1]; last != (state.ScoredMember{Member: b, Score: 1800}) {
				t.Fatalf("last member %+v, want %s at 1800", last, b)
			}
		})
	}
}
