package location

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/switchboard/switchboard/api"
)

// Bounds on the catalogue.
const (
	// maxStock bounds the SKUs one store lists: a service point's parts
	// shelf, not a warehouse.
	maxStock = 1000
	// maxQuantity bounds one SKU's stock count.
	maxQuantity = 1_000_000
	// storeScan bounds how many stores a nearby query reads before
	// filtering (open now, SKU in stock): a city's worth.
	storeScan = 200
)

// zone loads an IANA time zone once; the binary embeds the database
// (time/tzdata in cmd), so this works without system tzdata.
func (s *Service) zone(name string) (*time.Location, error) {
	if l, ok := s.zones.Load(name); ok {
		return l.(*time.Location), nil
	}
	if name == "" || len(name) > 64 || strings.Contains(name, "..") || name == "Local" {
		return nil, fmt.Errorf("time_zone must be an IANA name like Europe/Berlin")
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time_zone %q is not a known IANA zone", name)
	}
	s.zones.Store(name, l)
	return l, nil
}

// checkStore validates and normalises a store; the error is the reason
// alone, for import reports.
func (s *Service) checkStore(st *api.Store) error {
	if err := checkID("id", st.ID); err != nil {
		return fmt.Errorf("%s", reason(err))
	}
	st.Name = strings.TrimSpace(st.Name)
	if st.Name == "" || len(st.Name) > 200 {
		return fmt.Errorf("name must be 1 to 200 characters")
	}
	if err := checkPoint("position", st.Lat, st.Lon); err != nil {
		return fmt.Errorf("%s", reason(err))
	}
	if _, err := s.zone(st.TimeZone); err != nil {
		return err
	}
	if _, err := parseHours(st.Hours); err != nil {
		return err
	}
	caps := make([]string, 0, len(st.Capabilities))
	for _, c := range st.Capabilities {
		c = strings.ToLower(strings.TrimSpace(c))
		if c != api.CapabilityPickup && c != api.CapabilityRepair {
			return fmt.Errorf("capability %q is not pickup or repair", c)
		}
		if !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	st.Capabilities = caps
	if len(st.Stock) > maxStock {
		return fmt.Errorf("more than %d SKUs in stock", maxStock)
	}
	for sku, n := range st.Stock {
		if err := checkID("sku", sku); err != nil {
			return fmt.Errorf("%s", reason(err))
		}
		if n < 0 || n > maxQuantity {
			return fmt.Errorf("stock of %s must be 0 to %d", sku, maxQuantity)
		}
	}
	return nil
}

// PutStore creates or replaces a store in the catalogue.
func (s *Service) PutStore(ctx context.Context, st api.Store) (api.Store, error) {
	if err := s.checkStore(&st); err != nil {
		return api.Store{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return st, s.putStore(ctx, &st)
}

func (s *Service) putStore(ctx context.Context, st *api.Store) error {
	st.UpdatedAt = s.now().UTC()
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	// Record first, then the position: a search that finds the position
	// always finds the record.
	if err := s.st.Set(ctx, keyStore(st.ID), data, 0); err != nil {
		return err
	}
	return s.st.GeoAdd(ctx, geoStores, geoPoint(st.ID, api.Fix{Lat: st.Lat, Lon: st.Lon}))
}

// DeleteStore removes a store from the catalogue: its position first, so
// a search never finds a position whose record is gone. Deleting a store
// that is not there is ErrNotFound.
func (s *Service) DeleteStore(ctx context.Context, id string) error {
	if _, err := s.GetStore(ctx, id); err != nil {
		return err
	}
	if err := s.st.GeoRemove(ctx, geoStores, id); err != nil {
		return err
	}
	return s.st.Delete(ctx, keyStore(id))
}

// GetStore returns one store.
func (s *Service) GetStore(ctx context.Context, id string) (api.Store, error) {
	if checkID("store", id) != nil {
		return api.Store{}, fmt.Errorf("%w: no such store", ErrNotFound)
	}
	var st api.Store
	raw, err := s.getJSON(ctx, keyStore(id), &st)
	if err != nil {
		return api.Store{}, err
	}
	if raw == nil {
		return api.Store{}, fmt.Errorf("%w: no such store", ErrNotFound)
	}
	return st, nil
}

// StoreQuery asks for the nearest stores that can serve.
type StoreQuery struct {
	Lat, Lon float64
	RadiusM  float64 // 0: Config.DefaultRadiusM
	// SKU, when set, must be in stock (at least one).
	SKU string
	// Capability, when set, must be offered (pickup or repair).
	Capability string
	// OpenNow keeps only stores open at the time of the query.
	OpenNow bool
	K       int // 0: DefaultK
}

// NearbyStores returns up to K stores within RadiusM that can serve the
// query, nearest first, with their distance and whether they are open.
func (s *Service) NearbyStores(ctx context.Context, q StoreQuery) ([]api.NearbyStore, error) {
	radius, k, err := s.checkNearby(q.Lat, q.Lon, q.RadiusM, q.K)
	if err != nil {
		return nil, err
	}
	if q.SKU != "" {
		if err := checkID("sku", q.SKU); err != nil {
			return nil, err
		}
	}
	if q.Capability != "" && q.Capability != api.CapabilityPickup && q.Capability != api.CapabilityRepair {
		return nil, fmt.Errorf("%w: capability must be pickup or repair", ErrInvalid)
	}
	found, err := s.st.GeoNearest(ctx, geoStores, q.Lat, q.Lon, radius, storeScan)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := []api.NearbyStore{}
	for _, r := range found {
		if len(out) == k {
			break
		}
		var st api.Store
		raw, err := s.getJSON(ctx, keyStore(r.Member), &st)
		if err != nil {
			return nil, err
		}
		if raw == nil {
			continue
		}
		if q.SKU != "" && st.Stock[q.SKU] <= 0 {
			continue
		}
		if q.Capability != "" && !slices.Contains(st.Capabilities, q.Capability) {
			continue
		}
		open := false
		if loc, err := s.zone(st.TimeZone); err == nil {
			if w, err := parseHours(st.Hours); err == nil {
				open = w.openAt(now, loc)
			}
		}
		if q.OpenNow && !open {
			continue
		}
		out = append(out, api.NearbyStore{Store: st, DistanceM: int(math.Round(r.DistanceM)), OpenNow: open})
	}
	return out, nil
}
