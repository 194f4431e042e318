package statetest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/state"
)

// RunReopen checks persistence: it writes every kind of state, closes the
// store, opens a new one on the same directory with open, and checks that
// all of it is still there, including a consumer group's pending entry and
// a geo index rebuilt well enough to answer nearest queries. open must
// register its own t.Cleanup; the suite also closes each store itself.
func RunReopen(t *testing.T, open func(t *testing.T, dir string) state.Store) {
	t.Helper()
	ctx := testContext(t)
	dir := t.TempDir()
	s := open(t, dir)

	must(t, s.Set(ctx, "forever", []byte("v1"), 0), "Set")
	must(t, s.Set(ctx, "hour", []byte("v2"), time.Hour), "Set with TTL")
	must(t, s.Set(ctx, "gone", []byte("v3"), shortTTL), "Set short TTL")
	must(t, s.ZAdd(ctx, "idx", "a", 1), "ZAdd")
	must(t, s.ZAdd(ctx, "idx", "b", 2), "ZAdd")
	must(t, s.ZAdd(ctx, "idx", "c", 2), "ZAdd")

	data := payloads("e", 5)
	ids := addEntries(t, ctx, s, "s", data)
	must(t, s.XGroupCreate(ctx, "s", "g", "0"), "XGroupCreate")
	checkEntries(t, readGroup(t, ctx, s, "s", "g", "c1", 2), ids[:2], data[:2])
	must(t, s.XAck(ctx, "s", "g", ids[0]), "XAck") // ids[1] stays pending

	rng := rand.New(rand.NewPCG(3, 5))
	pts := make([]state.GeoPoint, 1000)
	for i := range pts {
		pts[i] = state.GeoPoint{Member: fmt.Sprintf("t%04d", i), Lat: 52.3 + rng.Float64()*0.4, Lon: 13.1 + rng.Float64()*0.6}
	}
	must(t, s.GeoAdd(ctx, "geo", pts...), "GeoAdd")
	must(t, s.GeoRemove(ctx, "geo", pts[0].Member), "GeoRemove")
	nearBefore, err := s.GeoNearest(ctx, "geo", 52.5, 13.4, 5000, 10)
	must(t, err, "GeoNearest")
	if len(nearBefore) != 10 {
		t.Fatalf("GeoNearest before reopen: got %d results, want 10", len(nearBefore))
	}
	checkFor(t, waitFor, 10*time.Millisecond, func() error { return isAbsent(ctx, s, "gone") })
	// A key whose TTL is still running when the store closes must expire
	// after it reopens: a TTL is part of the value, not of the process.
	must(t, s.Set(ctx, "later", []byte("v4"), 2*shortTTL), "Set TTL across restart")

	must(t, s.Close(), "Close")
	s = open(t, dir)
	t.Cleanup(func() { s.Close() })

	if got := getString(t, ctx, s, "forever"); got != "v1" {
		t.Fatalf("Get forever after reopen: got %q", got)
	}
	if got := getString(t, ctx, s, "hour"); got != "v2" {
		t.Fatalf("Get hour after reopen: got %q", got)
	}
	if err := isAbsent(ctx, s, "gone"); err != nil {
		t.Fatalf("expired key after reopen: %v", err)
	}
	checkFor(t, waitFor, 10*time.Millisecond, func() error { return isAbsent(ctx, s, "later") })

	got, err := s.ZRange(ctx, "idx", all)
	must(t, err, "ZRange after reopen")
	want := []state.ScoredMember{{Member: "a", Score: 1}, {Member: "b", Score: 2}, {Member: "c", Score: 2}}
	if !slices.Equal(got, want) {
		t.Fatalf("ZRange after reopen: got %v, want %v", got, want)
	}
	if n, err := s.ZCard(ctx, "idx"); err != nil || n != 3 {
		t.Fatalf("ZCard after reopen: got %d, %v; want 3", n, err)
	}

	if n, err := s.XLen(ctx, "s"); err != nil || n != 5 {
		t.Fatalf("XLen after reopen: got %d, %v; want 5", n, err)
	}
	all, err := s.XRead(ctx, "s", "", 100, 0)
	must(t, err, "XRead after reopen")
	checkEntries(t, all, ids, data)
	// The pending entry survived, and only it: acked ids[0] is not claimed.
	claimed, err := s.XAutoClaim(ctx, "s", "g", "c2", 0, 10)
	must(t, err, "XAutoClaim after reopen")
	checkEntries(t, claimed, ids[1:2], data[1:2])
	// The group's last-delivered ID survived: only undelivered entries come.
	checkEntries(t, readGroup(t, ctx, s, "s", "g", "c2", 10), ids[2:], data[2:])
	// IDs keep growing after a restart.
	more := addEntries(t, ctx, s, "s", payloads("after", 2))
	checkIncreasing(t, append(slices.Clone(ids), more...))

	for _, p := range pts[1:4] {
		q, err := s.GeoPos(ctx, "geo", p.Member)
		must(t, err, "GeoPos after reopen")
		if d := state.Distance(p.Lat, p.Lon, q.Lat, q.Lon); d > posTolerance {
			t.Fatalf("GeoPos %s after reopen: %.2fm off", p.Member, d)
		}
	}
	_, err = s.GeoPos(ctx, "geo", pts[0].Member)
	wantErr(t, err, state.ErrNotFound, "GeoPos of a removed member after reopen")
	nearAfter, err := s.GeoNearest(ctx, "geo", 52.5, 13.4, 5000, 10)
	must(t, err, "GeoNearest after reopen")
	if len(nearAfter) != len(nearBefore) {
		t.Fatalf("GeoNearest after reopen: got %d results, want %d", len(nearAfter), len(nearBefore))
	}
	for i := range nearAfter {
		if nearAfter[i].Member != nearBefore[i].Member {
			t.Fatalf("GeoNearest after reopen: result %d is %s, was %s", i, nearAfter[i].Member, nearBefore[i].Member)
		}
	}
	must(t, s.Close(), "Close reopened store")
}
