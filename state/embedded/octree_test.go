package embedded

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/switchboard/switchboard/state"
)

// bruteNearest is the reference answer: every point, sorted.
func bruteNearest(pts map[string]state.GeoPoint, lat, lon, radius float64, k int) []state.GeoResult {
	var out []state.GeoResult
	for _, p := range pts {
		if d := state.Distance(lat, lon, p.Lat, p.Lon); d <= radius {
			out = append(out, state.GeoResult{GeoPoint: p, DistanceM: d})
		}
	}
	slices.SortFunc(out, func(a, b state.GeoResult) int {
		return cmp.Or(cmp.Compare(a.DistanceM, b.DistanceM), cmp.Compare(a.Member, b.Member))
	})
	if k > 0 && len(out) > k {
		out = out[:k]
	}
	return out
}

// checkTree verifies the subtree counts and that every point sits in the
// cell its coordinates select.
func checkTree(t *testing.T, n *octNode) int {
	t.Helper()
	if n.kids == nil {
		if len(n.pts) != n.n {
			t.Fatalf("leaf at depth %d: n=%d but %d points", n.depth, n.n, len(n.pts))
		}
		for _, p := range n.pts {
			if n.boxDist2(p.v) > 1e-24 {
				t.Fatalf("point %s outside its leaf", p.Member)
			}
		}
		return n.n
	}
	sum := 0
	for _, k := range n.kids {
		sum += checkTree(t, k)
	}
	if sum != n.n {
		t.Fatalf("node at depth %d: n=%d, children hold %d", n.depth, n.n, sum)
	}
	return sum
}

// TestOctreeAgainstBruteForce adds, moves and removes points at random,
// including clusters of identical positions, the poles' neighbourhood and
// both sides of the antimeridian, and compares every query with brute
// force. Ties are broken by member in both, so results must be equal.
func TestOctreeAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	g := newGeoIndex()
	ref := make(map[string]state.GeoPoint)
	randomPoint := func() (float64, float64) {
		switch rng.IntN(5) {
		case 0: // identical positions: more than leafCap share one spot
			return 45, 7
		case 1: // near the antimeridian
			return rng.Float64()*10 - 5, 179.5 + rng.Float64()*0.5 - float64(rng.IntN(2))*359.5
		case 2: // near the pole limit
			return state.MaxLatitude - rng.Float64()*2, rng.Float64()*360 - 180
		case 3: // a city
			return 40.7 + rng.Float64()*0.1, -74 + rng.Float64()*0.1
		}
		return rng.Float64()*170 - 85, rng.Float64()*360 - 180
	}
	for step := range 20000 {
		m := fmt.Sprintf("m%d", rng.IntN(3000))
		if rng.IntN(4) == 0 {
			g.del(m)
			delete(ref, m)
		} else {
			lat, lon := randomPoint()
			p := state.GeoPoint{Member: m, Lat: lat, Lon: lon}
			g.put(p)
			ref[m] = p
		}
		if step%500 != 0 {
			continue
		}
		if n := checkTree(t, g.root); n != len(ref) || len(g.byName) != len(ref) {
			t.Fatalf("step %d: tree holds %d, map %d, want %d", step, n, len(g.byName), len(ref))
		}
		for range 20 {
			lat, lon := randomPoint()
			radius := []float64{100, 5e3, 5e5, 2e7, 1e9}[rng.IntN(5)]
			k := rng.IntN(30)
			got, err := g.nearest(context.Background(), lat, lon, radius, k)
			if err != nil {
				t.Fatal(err)
			}
			want := bruteNearest(ref, lat, lon, radius, k)
			if len(got) != len(want) {
				t.Fatalf("step %d query %v,%v r=%v k=%d: got %d results, want %d", step, lat, lon, radius, k, len(got), len(want))
			}
			for i := range got {
				if got[i].Member != want[i].Member || got[i].DistanceM != want[i].DistanceM {
					t.Fatalf("step %d query %v,%v r=%v k=%d: result %d is %s@%v, want %s@%v",
						step, lat, lon, radius, k, i, got[i].Member, got[i].DistanceM, want[i].Member, want[i].DistanceM)
				}
			}
		}
	}
	// Removing everything folds the tree back to a single leaf.
	for m := range ref {
		g.del(m)
	}
	if g.root.n != 0 || g.root.kids != nil {
		t.Fatalf("empty index: root n=%d, leaf=%v", g.root.n, g.root.kids == nil)
	}
}

func TestOctreeCancel(t *testing.T) {
	g := newGeoIndex()
	for i := range 5000 {
		g.put(state.GeoPoint{Member: fmt.Sprint(i), Lat: float64(i%170) - 85, Lon: float64(i%360) - 180})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.nearest(ctx, 0, 0, 1e9, 0); err == nil {
		t.Fatal("nearest over the whole globe ignored a cancelled context")
	}
}

func BenchmarkOctreeMove(b *testing.B) {
	rng := rand.New(rand.NewPCG(2, 2))
	g := newGeoIndex()
	for i := range 100000 {
		g.put(state.GeoPoint{Member: fmt.Sprint(i), Lat: 47 + rng.Float64()*8, Lon: 6 + rng.Float64()*9})
	}
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprint(i)
	}
	for i := 0; b.Loop(); i++ {
		g.put(state.GeoPoint{Member: names[i%len(names)], Lat: 47 + rng.Float64()*8, Lon: 6 + rng.Float64()*9})
	}
}
