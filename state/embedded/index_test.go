package embedded

import (
	"context"
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
