package location

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/embedded"
	"github.com/switchboard/switchboard/state/redis"
)

// benchFleet is the fleet size the goal names.
const benchFleet = 100_000

// fillFleet puts benchFleet technicians around Germany (47-55°N,
// 6-15°E) in the availability set, as Report would.
func fillFleet(b *testing.B, st state.Store) {
	b.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	pts := make([]state.GeoPoint, 0, 1000)
	for i := 0; i < benchFleet; i++ {
		pts = append(pts, state.GeoPoint{Member: "tech-" + itoa(i), Lat: 47 + r.Float64()*8, Lon: 6 + r.Float64()*9})
		if len(pts) == cap(pts) {
			if err := st.GeoAdd(context.Background(), geoAvail, pts...); err != nil {
				b.Fatal(err)
			}
			pts = pts[:0]
		}
	}
}

func itoa(i int) string { return string(rune('a'+i%26)) + time.Duration(i).String() }

// benchNearest runs nearest-10 queries at random points of the fleet's
// area from parallel goroutines and reports queries/s and p99 latency.
func benchNearest(b *testing.B, st state.Store) {
	fillFleet(b, st)
	s := New(st, nil, Config{})
	var mu sync.Mutex
	var lat []time.Duration
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 3))
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			t0 := time.Now()
			got, err := s.NearbyTechnicians(context.Background(), TechQuery{Lat: 47.5 + r.Float64()*7, Lon: 6.5 + r.Float64()*8, RadiusM: 50_000, K: 10})
			local = append(local, time.Since(t0))
			if err != nil || len(got) != 10 {
				b.Errorf("got %d, %v", len(got), err)
				return
			}
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "queries/s")
}

// BenchmarkNearest10 is nearest-10 among 100,000 technicians.
func BenchmarkNearest10(b *testing.B) {
	b.Run("embedded", func(b *testing.B) {
		st, err := embedded.Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		benchNearest(b, st)
	})
	b.Run("redis", func(b *testing.B) {
		srv := redistest.Start(b)
		st, err := redis.New(context.Background(), redis.Config{URL: srv.URL() + "?pool_size=64", Prefix: "bench:"})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		// Redis answers over the network: keep enough queries in flight
		// to measure its throughput, not one round trip at a time.
		b.SetParallelism(4)
		benchNearest(b, st)
	})
}
