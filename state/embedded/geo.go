package embedded

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/switchboard/switchboard/state"
)

// A geo set is a bucket under bucketGeo, member -> lat(8) lon(8) as
// float64 bits: the file is the truth, and the octree in memory (rebuilt
// at Open) answers queries. Positions are stored exactly as given.

// geoSets holds the in-memory index of every set.
type geoSets struct {
	mu   sync.RWMutex
	sets map[string]*geoIndex
}

func (g *geoSets) get(set string) *geoIndex {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.sets[set]
}

func (g *geoSets) getOrCreate(set string) *geoIndex {
	if idx := g.get(set); idx != nil {
		return idx
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	idx := g.sets[set]
	if idx == nil {
		idx = newGeoIndex()
		g.sets[set] = idx
	}
	return idx
}

// drop forgets an emptied set. Only the committer adds and drops sets,
// in commit order, so a GeoAdd cannot be lost to a concurrent drop.
func (g *geoSets) drop(set string) {
	g.mu.Lock()
	delete(g.sets, set)
	g.mu.Unlock()
}

func encodePos(lat, lon float64) []byte {
	v := make([]byte, 16)
	binary.BigEndian.PutUint64(v, math.Float64bits(lat))
	binary.BigEndian.PutUint64(v[8:], math.Float64bits(lon))
	return v
}

func decodePos(v []byte) (lat, lon float64) {
	return math.Float64frombits(binary.BigEndian.Uint64(v)), math.Float64frombits(binary.BigEndian.Uint64(v[8:]))
}

// loadGeo rebuilds the in-memory index from the file; Open calls it.
func (s *Store) loadGeo() error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketGeo).ForEachBucket(func(name []byte) error {
			idx := s.geo.getOrCreate(string(name))
			return tx.Bucket(bucketGeo).Bucket(name).ForEach(func(k, v []byte) error {
				if len(v) != 16 {
					return fmt.Errorf("geo set %q member %q: corrupt position", name, k)
				}
				lat, lon := decodePos(v)
				idx.put(state.GeoPoint{Member: string(k), Lat: lat, Lon: lon})
				return nil
			})
		})
	})
}

// GeoAdd adds or moves points. Every coordinate is checked before
// anything is written, so a bad point stores nothing.
func (s *Store) GeoAdd(ctx context.Context, set string, points ...state.GeoPoint) error {
	if err := checkGeoAdd(set, points); err != nil {
		return err
	}
	if len(points) == 0 {
		return s.Ping(ctx)
	}
	pts := append([]state.GeoPoint(nil), points...) // the caller may reuse its slice
	err := s.update(ctx, func(tx *bolt.Tx) error {
		return geoAddInTx(tx, set, pts)
	}, func() { s.geo.add(set, pts) })
	if err != nil {
		return fmt.Errorf("embedded: geoadd: %w", err)
	}
	return nil
}

func checkGeoAdd(set string, points []state.GeoPoint) error {
	if err := checkName("geo set", set); err != nil {
		return err
	}
	for _, p := range points {
		if !state.ValidCoordinates(p.Lat, p.Lon) {
			return fmt.Errorf("embedded: geoadd %q at %v,%v: %w", p.Member, p.Lat, p.Lon, state.ErrInvalidCoordinates)
		}
		if err := checkName("member", p.Member); err != nil {
			return err
		}
	}
	return nil
}

// geoAddInTx writes points to set's bucket inside tx; the committer
// then puts them in memory with geoSets.add.
func geoAddInTx(tx *bolt.Tx, set string, points []state.GeoPoint) error {
	if len(points) == 0 {
		return nil // no empty set, as Redis has none
	}
	b, err := tx.Bucket(bucketGeo).CreateBucketIfNotExists([]byte(set))
	if err != nil {
		return err
	}
	for _, p := range points {
		if err := b.Put([]byte(p.Member), encodePos(p.Lat, p.Lon)); err != nil {
			return err
		}
	}
	return nil
}

// add puts committed points in set's in-memory index.
func (g *geoSets) add(set string, points []state.GeoPoint) {
	if len(points) == 0 {
		return
	}
	idx := g.getOrCreate(set)
	idx.mu.Lock()
	for _, p := range points {
		idx.put(p)
	}
	idx.mu.Unlock()
}

// GeoRemove removes members; absent ones are ignored.
func (s *Store) GeoRemove(ctx context.Context, set string, members ...string) error {
	if err := checkName("geo set", set); err != nil {
		return err
	}
	if len(members) == 0 {
		return s.Ping(ctx)
	}
	name := []byte(set)
	err := s.update(ctx, func(tx *bolt.Tx) error {
		top := tx.Bucket(bucketGeo)
		b := top.Bucket(name)
		if b == nil {
			return nil
		}
		for _, m := range members {
			if m == "" {
				continue // cannot be stored, so cannot be there
			}
			if err := b.Delete([]byte(m)); err != nil {
				return err
			}
		}
		// Drop an emptied set, as Redis drops empty keys.
		if k, _ := b.Cursor().First(); k == nil {
			return top.DeleteBucket(name)
		}
		return nil
	}, func() {
		idx := s.geo.get(set)
		if idx == nil {
			return
		}
		idx.mu.Lock()
		for _, m := range members {
			idx.del(m)
		}
		empty := len(idx.byName) == 0
		idx.mu.Unlock()
		if empty {
			s.geo.drop(set)
		}
	})
	if err != nil {
		return fmt.Errorf("embedded: georemove: %w", err)
	}
	return nil
}

// GeoPos returns the stored position of member, from memory: the index is
// updated after every commit, in commit order, so it is never behind a
// returned GeoAdd.
func (s *Store) GeoPos(ctx context.Context, set, member string) (state.GeoPoint, error) {
	if err := s.enter(ctx); err != nil {
		return state.GeoPoint{}, err
	}
	defer s.leave()
	if idx := s.geo.get(set); idx != nil {
		idx.mu.RLock()
		p := idx.byName[member]
		idx.mu.RUnlock()
		if p != nil {
			return p.GeoPoint, nil
		}
	}
	return state.GeoPoint{}, fmt.Errorf("embedded: geopos %q: %w", member, state.ErrNotFound)
}

// GeoNearest returns up to k (0: all) members within radiusM metres of
// lat/lon, nearest first (ties by member).
func (s *Store) GeoNearest(ctx context.Context, set string, lat, lon, radiusM float64, k int) ([]state.GeoResult, error) {
	if !state.ValidCoordinates(lat, lon) {
		return nil, fmt.Errorf("embedded: geonearest around %v,%v: %w", lat, lon, state.ErrInvalidCoordinates)
	}
	if math.IsNaN(radiusM) || radiusM < 0 {
		return nil, fmt.Errorf("embedded: geonearest: %w: radius %v", state.ErrInvalidArgument, radiusM)
	}
	if err := checkCount("k", k); err != nil {
		return nil, err
	}
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	idx := s.geo.get(set)
	if idx == nil {
		return nil, nil
	}
	idx.mu.RLock()
	defer idx.mu.RUnlock()
	out, err := idx.nearest(ctx, lat, lon, radiusM, k)
	if err != nil {
		return nil, fmt.Errorf("embedded: geonearest: %w", err)
	}
	return out, nil
}
