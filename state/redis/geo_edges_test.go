package redis_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/state"
)

// TestGeoEdges searches for points on the edges of the Web Mercator
// square from centres on and off them, against brute force. Redis 7
// alone never finds a point at latitude +MaxLatitude or longitude +180
// (they encode one cell past its grid); GeoAdd and GeoNearest move such
// coordinates 1 cm inside. Without that, this test misses thousands.
func TestGeoEdges(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv)
	ctx := testCtx(t)
	M := state.MaxLatitude
	var pts []state.GeoPoint
	for i, lat := range []float64{-M, -60, 0, 45, M, math.Nextafter(M, 0), M - 1e-9} {
		for j, lon := range []float64{-180, -179.9999, 0, 179.9999, 180, math.Nextafter(180, 0), 180 - 1e-9} {
			pts = append(pts, state.GeoPoint{Member: fmt.Sprintf("p%d_%d", i, j), Lat: lat, Lon: lon})
		}
	}
	if err := s.GeoAdd(ctx, "g", pts...); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var centres [][2]float64
	for _, p := range pts {
		centres = append(centres, [2]float64{p.Lat, p.Lon})
	}
	for range 30 {
		centres = append(centres, [2]float64{(rng.Float64()*2 - 1) * M, (rng.Float64()*2 - 1) * 180})
	}
	bad := 0
	for _, c := range centres {
		for _, r := range []float64{100, 1e5, 1e6, 5e6, 1.5e7, math.Inf(1)} {
			got, err := s.GeoNearest(ctx, "g", c[0], c[1], r, 0)
			if err != nil {
				t.Fatal(err)
			}
			in := map[string]bool{}
			for _, g := range got {
				in[g.Member] = true
			}
			for _, p := range pts {
				d := state.Distance(c[0], c[1], p.Lat, p.Lon)
				if d <= r-1 && !in[p.Member] {
					bad++
					if bad < 20 {
						t.Errorf("centre %v r %v: missing %v at %.1f m", c, r, p, d)
					}
				}
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d points missing", bad)
	}
}
