package statetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/switchboard/switchboard/state"
)

// Bench runs the performance benchmarks every backend reports, each on a
// fresh store from newStore. The figures are what the DESIGN promises are
// judged against: KV latency, stream append throughput (batched and many
// concurrent single appends) and nearest search among 100,000 points.
func Bench(b *testing.B, newStore func(b *testing.B) state.Store) {
	b.Run("KVSet", func(b *testing.B) { benchKVSet(b, newStore(b), false) })
	b.Run("KVSetParallel", func(b *testing.B) { benchKVSet(b, newStore(b), true) })
	b.Run("KVGet", func(b *testing.B) { benchKVGet(b, newStore(b)) })
	b.Run("XAddBatch100", func(b *testing.B) { benchXAddBatch(b, newStore(b)) })
	b.Run("XAddParallel", func(b *testing.B) { benchXAddParallel(b, newStore(b)) })
	b.Run("GeoPut", func(b *testing.B) { benchGeoPut(b, newStore(b)) })
	b.Run("GeoNearest10of100k", func(b *testing.B) { benchGeoNearest(b, newStore(b)) })
}

// benchContext is a plain background context: benchmarks run as long as
// -benchtime asks, so a timeout would only cut them short.
var benchContext = context.Background()

// parallelism is the goroutines per CPU in parallel benchmarks: enough
// concurrent callers for group commit (or Redis pipelining) to matter on
// a 2-core machine, the way many HTTP handlers call the store at once.
const parallelism = 16

func benchKVSet(b *testing.B, s state.Store, parallel bool) {
	value := make([]byte, 100)
	if !parallel {
		for i := 0; b.Loop(); i++ {
			if err := s.Set(benchContext, fmt.Sprintf("key-%d", i%1000), value, 0); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sets/s")
		return
	}
	var n atomic.Int64
	b.SetParallelism(parallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if err := s.Set(benchContext, fmt.Sprintf("key-%d", i%1000), value, 0); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sets/s")
}

func benchKVGet(b *testing.B, s state.Store) {
	value := make([]byte, 100)
	for i := range 1000 {
		if err := s.Set(benchContext, fmt.Sprintf("key-%d", i), value, 0); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; b.Loop(); i++ {
		if _, err := s.Get(benchContext, fmt.Sprintf("key-%d", i%1000)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "gets/s")
}

// entry is a ~200-byte stream entry, the size of a ticket event.
var entry = func() []byte {
	e := make([]byte, 200)
	for i := range e {
		e[i] = 'a' + byte(i%26)
	}
	return e
}()

func benchXAddBatch(b *testing.B, s state.Store) {
	const batch = 100
	values := make([][]byte, batch)
	for i := range values {
		values[i] = entry
	}
	for b.Loop() {
		if _, err := s.XAdd(benchContext, "bench", values...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "entries/s")
}

func benchXAddParallel(b *testing.B, s state.Store) {
	b.SetParallelism(parallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.XAdd(benchContext, "bench", entry); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// region is the box benchmark points fall in: roughly Germany, so density
// is that of a national fleet of technicians and stores.
func regionPoint(rng *rand.Rand, member string) state.GeoPoint {
	return state.GeoPoint{Member: member, Lat: 47.3 + rng.Float64()*7.7, Lon: 5.9 + rng.Float64()*9.1}
}

func benchGeoPut(b *testing.B, s state.Store) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; b.Loop(); i++ {
		p := regionPoint(rng, fmt.Sprintf("tech-%d", i%10000))
		if err := s.GeoAdd(benchContext, "fleet", p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
}

func benchGeoNearest(b *testing.B, s state.Store) {
	const points, chunk = 100000, 1000
	rng := rand.New(rand.NewPCG(3, 4))
	pts := make([]state.GeoPoint, chunk)
	for i := 0; i < points; i += chunk {
		for j := range pts {
			pts[j] = regionPoint(rng, fmt.Sprintf("p%06d", i+j))
		}
		if err := s.GeoAdd(benchContext, "fleet", pts...); err != nil {
			b.Fatal(err)
		}
	}
	centres := make([]state.GeoPoint, 1024)
	for i := range centres {
		centres[i] = regionPoint(rng, "")
	}
	for i := 0; b.Loop(); i++ {
		c := centres[i%len(centres)]
		got, err := s.GeoNearest(benchContext, "fleet", c.Lat, c.Lon, 50000, 10)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != 10 {
			b.Fatalf("GeoNearest: got %d results, want 10", len(got))
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
}
