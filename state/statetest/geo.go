package statetest

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/switchboard/switchboard/state"
)

// posTolerance is how far a stored position may come back from where it
// was put: Redis keeps 52-bit geohashes, good to well under a metre.
const posTolerance = 1.0 // metres

var geoCases = []testCase{
	{"InvalidCoordinates", testGeoInvalid},
	{"PosAndMove", testGeoPosMove},
	{"Remove", testGeoRemove},
	{"Radius", testGeoRadius},
	{"NearestBruteForce", testGeoNearestBruteForce},
}

func testGeoInvalid(t *testing.T, s state.Store) {
	ctx := testContext(t)
	good := state.GeoPoint{Member: "good", Lat: 48.8584, Lon: 2.2945}
	bad := []struct {
		name     string
		lat, lon float64
	}{
		{"lat 91", 91, 0},
		{"lat -91", -91, 0},
		{"lat 85.06 beyond Web Mercator", 85.06, 0},
		{"lat -85.06", -85.06, 0},
		{"lon 181", 0, 181},
		{"lon -181", 0, -181},
		{"lon NaN", 0, math.NaN()},
		{"lat NaN", math.NaN(), 0},
		{"lon +Inf", 0, math.Inf(1)},
	}
	for _, b := range bad {
		err := s.GeoAdd(ctx, "geo", good, state.GeoPoint{Member: "bad", Lat: b.lat, Lon: b.lon})
		wantErr(t, err, state.ErrInvalidCoordinates, "GeoAdd "+b.name)
		for _, m := range []string{"good", "bad"} {
			_, err := s.GeoPos(ctx, "geo", m)
			wantErr(t, err, state.ErrNotFound, fmt.Sprintf("GeoPos %s after refused GeoAdd (%s)", m, b.name))
		}
		_, err = s.GeoNearest(ctx, "geo", b.lat, b.lon, 1000, 10)
		wantErr(t, err, state.ErrInvalidCoordinates, "GeoNearest around "+b.name)
	}
	got, err := s.GeoNearest(ctx, "geo", good.Lat, good.Lon, 1e6, 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("GeoNearest after only refused adds: got %v, %v; want empty", got, err)
	}

	// The edges themselves are valid.
	edges := []state.GeoPoint{
		{Member: "ne", Lat: state.MaxLatitude, Lon: 180},
		{Member: "sw", Lat: -state.MaxLatitude, Lon: -180},
	}
	must(t, s.GeoAdd(ctx, "geo", edges...), "GeoAdd at the edges")
	for _, e := range edges {
		p, err := s.GeoPos(ctx, "geo", e.Member)
		must(t, err, "GeoPos "+e.Member)
		if d := state.Distance(e.Lat, e.Lon, p.Lat, p.Lon); d > posTolerance {
			t.Fatalf("GeoPos %s: %v is %.2fm from %v", e.Member, p, d, e)
		}
	}
}

func testGeoPosMove(t *testing.T, s state.Store) {
	ctx := testContext(t)
	_, err := s.GeoPos(ctx, "absent", "x")
	wantErr(t, err, state.ErrNotFound, "GeoPos on absent set")
	at := func(m string, lat, lon float64) {
		t.Helper()
		p, err := s.GeoPos(ctx, "geo", m)
		must(t, err, "GeoPos "+m)
		if p.Member != m {
			t.Fatalf("GeoPos %s: got member %q", m, p.Member)
		}
		if d := state.Distance(lat, lon, p.Lat, p.Lon); d > posTolerance {
			t.Fatalf("GeoPos %s: got %.7f,%.7f, %.2fm from %.7f,%.7f", m, p.Lat, p.Lon, d, lat, lon)
		}
	}
	must(t, s.GeoAdd(ctx, "geo",
		state.GeoPoint{Member: "tower", Lat: 48.8584, Lon: 2.2945},
		state.GeoPoint{Member: "opera", Lat: -33.8568, Lon: 151.2153}), "GeoAdd")
	at("tower", 48.8584, 2.2945)
	at("opera", -33.8568, 151.2153)
	_, err = s.GeoPos(ctx, "geo", "absent")
	wantErr(t, err, state.ErrNotFound, "GeoPos absent member")

	// Adding an existing member moves it; a later point in one call wins.
	must(t, s.GeoAdd(ctx, "geo",
		state.GeoPoint{Member: "tower", Lat: 10, Lon: 10},
		state.GeoPoint{Member: "tower", Lat: 51.5007, Lon: -0.1246}), "GeoAdd move")
	at("tower", 51.5007, -0.1246)
	got, err := s.GeoNearest(ctx, "geo", 48.8584, 2.2945, 1000, 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("GeoNearest at the old position: got %v, %v; want empty", got, err)
	}
	got, err = s.GeoNearest(ctx, "geo", 51.5007, -0.1246, 1000, 10)
	if err != nil || len(got) != 1 || got[0].Member != "tower" {
		t.Fatalf("GeoNearest at the new position: got %v, %v; want tower", got, err)
	}
}

func testGeoRemove(t *testing.T, s state.Store) {
	ctx := testContext(t)
	must(t, s.GeoRemove(ctx, "absent", "x"), "GeoRemove on absent set")
	must(t, s.GeoAdd(ctx, "geo",
		state.GeoPoint{Member: "a", Lat: 40, Lon: -74},
		state.GeoPoint{Member: "b", Lat: 40.001, Lon: -74}), "GeoAdd")
	must(t, s.GeoRemove(ctx, "geo", "a", "not-there"), "GeoRemove")
	_, err := s.GeoPos(ctx, "geo", "a")
	wantErr(t, err, state.ErrNotFound, "GeoPos removed member")
	got, err := s.GeoNearest(ctx, "geo", 40, -74, 10000, 10)
	if err != nil || len(got) != 1 || got[0].Member != "b" {
		t.Fatalf("GeoNearest after remove: got %v, %v; want only b", got, err)
	}
	must(t, s.GeoRemove(ctx, "geo", "b"), "GeoRemove last member")
	got, err = s.GeoNearest(ctx, "geo", 40, -74, 10000, 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("GeoNearest on emptied set: got %v, %v; want empty", got, err)
	}
}

// north returns the point d metres due north of lat, lon.
func north(lat, lon, d float64) (float64, float64) {
	return lat + d/state.EarthRadiusM*180/math.Pi, lon
}

func testGeoRadius(t *testing.T, s state.Store) {
	ctx := testContext(t)
	const lat0, lon0 = 52.52, 13.405
	dists := []float64{100, 500, 1000, 2500, 10000}
	var pts []state.GeoPoint
	for i, d := range dists {
		la, lo := north(lat0, lon0, d)
		pts = append(pts, state.GeoPoint{Member: fmt.Sprintf("p%d", i), Lat: la, Lon: lo})
	}
	must(t, s.GeoAdd(ctx, "geo", pts...), "GeoAdd")

	cases := []struct {
		radius float64
		k      int
		want   int // how many of pts, nearest first
	}{
		{1500, 10, 3},
		{1500, 2, 2},
		{50, 10, 0},
		{20000, 10, 5},
		{20000, 4, 4},
		{20000, 0, 5}, // k 0: no limit
	}
	for _, c := range cases {
		got, err := s.GeoNearest(ctx, "geo", lat0, lon0, c.radius, c.k)
		must(t, err, "GeoNearest")
		if len(got) != c.want {
			t.Fatalf("GeoNearest radius %v k %d: got %d results %v, want %d", c.radius, c.k, len(got), got, c.want)
		}
		for i, r := range got {
			if r.Member != pts[i].Member {
				t.Fatalf("GeoNearest radius %v: result %d is %s, want %s", c.radius, i, r.Member, pts[i].Member)
			}
			if math.Abs(r.DistanceM-dists[i]) > posTolerance {
				t.Fatalf("GeoNearest: %s at %.3fm, want %.0fm", r.Member, r.DistanceM, dists[i])
			}
			if d := state.Distance(pts[i].Lat, pts[i].Lon, r.Lat, r.Lon); d > posTolerance {
				t.Fatalf("GeoNearest: %s reported at %.7f,%.7f, %.2fm from where it was put", r.Member, r.Lat, r.Lon, d)
			}
		}
	}
	got, err := s.GeoNearest(ctx, "empty", lat0, lon0, 1e6, 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("GeoNearest on absent set: got %v, %v; want empty", got, err)
	}
}

// geoQuery is one nearest search checked against brute force.
type geoQuery struct {
	name     string
	lat, lon float64
	radius   float64
	k        int
}

func testGeoNearestBruteForce(t *testing.T, s state.Store) {
	ctx := testContext(t)
	rng := rand.New(rand.NewPCG(7, 11))
	const n = 10000
	// Half the points crowd one city (technicians, stores), half spread
	// over the whole valid globe, including near the antimeridian.
	pts := make([]state.GeoPoint, n)
	for i := range pts {
		var lat, lon float64
		if i%2 == 0 {
			lat, lon = 48.7+rng.Float64()*0.3, 2.2+rng.Float64()*0.3
		} else {
			lat, lon = (rng.Float64()*2-1)*80, (rng.Float64()*2-1)*180
		}
		pts[i] = state.GeoPoint{Member: fmt.Sprintf("m%05d", i), Lat: lat, Lon: lon}
	}
	for i := 0; i < n; i += 1000 {
		must(t, s.GeoAdd(ctx, "geo", pts[i:i+1000]...), "GeoAdd")
	}
	// Brute force runs on positions as stored, not as put: Redis quantizes.
	stored := make([]state.GeoPoint, n)
	for i, p := range pts {
		q, err := s.GeoPos(ctx, "geo", p.Member)
		must(t, err, "GeoPos")
		if d := state.Distance(p.Lat, p.Lon, q.Lat, q.Lon); d > posTolerance {
			t.Fatalf("GeoPos %s: %.2fm from where it was put", p.Member, d)
		}
		stored[i] = q
	}

	queries := []geoQuery{
		{"city centre", 48.85, 2.35, 50000, 10},
		{"city edge", 48.7, 2.2, 5000, 10},
		{"city, small radius", 48.8, 2.3, 300, 10},
		{"city, k 1", 48.81, 2.31, 50000, 1},
		{"city, k 50", 48.9, 2.4, 50000, 50},
		{"antimeridian east", 10, 179.9, 2500000, 10},
		{"antimeridian west", -10, -179.9, 2500000, 10},
		{"far north", 75, 30, 2500000, 10},
		{"ocean, nothing near", -50, -120, 1000, 10},
	}
	for range 10 {
		queries = append(queries, geoQuery{"random", (rng.Float64()*2 - 1) * 80, (rng.Float64()*2 - 1) * 180, 2000000, 10})
	}
	for _, q := range queries {
		got, err := s.GeoNearest(ctx, "geo", q.lat, q.lon, q.radius, q.k)
		must(t, err, "GeoNearest "+q.name)
		checkNearest(t, q, stored, got)
	}
}

// checkNearest compares a nearest search with brute force. Equal
// distances may be ordered either way, so membership is checked with a
// tolerance around the k-th distance.
func checkNearest(t *testing.T, q geoQuery, stored []state.GeoPoint, got []state.GeoResult) {
	t.Helper()
	const tol = 0.5 // metres: Redis rounds reported distances
	type cand struct {
		p state.GeoPoint
		d float64
	}
	var want []cand
	byMember := make(map[string]state.GeoPoint, len(stored))
	for _, p := range stored {
		byMember[p.Member] = p
		if d := state.Distance(q.lat, q.lon, p.Lat, p.Lon); d <= q.radius {
			want = append(want, cand{p, d})
		}
	}
	slices.SortFunc(want, func(a, b cand) int { return cmp.Compare(a.d, b.d) })
	if len(want) > q.k {
		want = want[:q.k]
	}
	if len(got) != len(want) {
		t.Fatalf("%s: got %d results, want %d", q.name, len(got), len(want))
	}
	if len(want) == 0 {
		return
	}
	kth := want[len(want)-1].d
	returned := make(map[string]bool, len(got))
	for i, r := range got {
		p, ok := byMember[r.Member]
		if !ok {
			t.Fatalf("%s: unknown member %q", q.name, r.Member)
		}
		if returned[r.Member] {
			t.Fatalf("%s: member %s returned twice", q.name, r.Member)
		}
		returned[r.Member] = true
		d := state.Distance(q.lat, q.lon, p.Lat, p.Lon)
		if math.Abs(r.DistanceM-d) > tol {
			t.Fatalf("%s: %s reported at %.3fm, brute force says %.3fm", q.name, r.Member, r.DistanceM, d)
		}
		if d > kth+tol {
			t.Fatalf("%s: %s at %.3fm is beyond the k-th nearest (%.3fm)", q.name, r.Member, d, kth)
		}
		if i > 0 && r.DistanceM < got[i-1].DistanceM {
			t.Fatalf("%s: results not nearest first: %.3fm after %.3fm", q.name, r.DistanceM, got[i-1].DistanceM)
		}
		if sd := state.Distance(p.Lat, p.Lon, r.Lat, r.Lon); sd > posTolerance {
			t.Fatalf("%s: %s reported at %.7f,%.7f, %.2fm from GeoPos", q.name, r.Member, r.Lat, r.Lon, sd)
		}
	}
	for _, w := range want {
		if w.d < kth-tol && !returned[w.p.Member] {
			t.Fatalf("%s: %s at %.3fm is among the %d nearest but missing", q.name, w.p.Member, w.d, q.k)
		}
	}
}
