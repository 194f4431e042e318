package location_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/location"
	"github.com/switchboard/switchboard/state"
)

func TestNearbyTechnicians(t *testing.T) {
	backends(t, func(t *testing.T, st state.Store) {
		f := newFixture(t, st, location.Config{}, nil)
		f.onDuty(t, "near", 52.5200, 13.4050, "projector")
		f.onDuty(t, "far", 52.6000, 13.5000, "projector", "hvac")
		f.onDuty(t, "other-skill", 52.5201, 13.4051, "hvac")
		got, err := f.svc.NearbyTechnicians(ctx, location.TechQuery{Lat: 52.52, Lon: 13.405, RadiusM: 50_000, Skills: []string{"projector"}, K: 5})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].TechnicianID != "near" || got[1].TechnicianID != "far" {
			t.Fatalf("got %+v", got)
		}
		if got[1].ETASeconds <= got[0].ETASeconds || got[1].DistanceM < 9000 {
			t.Fatalf("ETA/distance not ordered: %+v", got)
		}
		both, err := f.svc.NearbyTechnicians(ctx, location.TechQuery{Lat: 52.52, Lon: 13.405, Skills: []string{"projector", "hvac"}})
		if err != nil || len(both) != 1 || both[0].TechnicianID != "far" {
			t.Fatalf("two skills: %+v %v", both, err)
		}
		for name, q := range map[string]location.TechQuery{
			"a million km":   {Lat: 52, Lon: 13, RadiusM: 1e9},
			"k of a million": {Lat: 52, Lon: 13, K: 1_000_000},
			"latitude 86":    {Lat: 86, Lon: 13},
			"bad skill":      {Lat: 52, Lon: 13, Skills: []string{"a b"}},
		} {
			if _, err := f.svc.NearbyTechnicians(ctx, q); !errors.Is(err, location.ErrInvalid) {
				t.Errorf("%s: %v, want ErrInvalid", name, err)
			}
		}
		// Off duty leaves the sets.
		if _, err := f.svc.SetDuty(ctx, "near", false); err != nil {
			t.Fatal(err)
		}
		got, _ = f.svc.NearbyTechnicians(ctx, location.TechQuery{Lat: 52.52, Lon: 13.405, Skills: []string{"projector"}})
		if len(got) != 1 || got[0].TechnicianID != "far" {
			t.Fatalf("off-duty technician still offered: %+v", got)
		}
	})
}

// TestStaleNotAvailable: a technician whose last fix is older than
// StaleAfter is swept out of the availability sets; one who keeps
// reporting stays.
func TestStaleNotAvailable(t *testing.T) {
	backends(t, func(t *testing.T, st state.Store) {
		f := newFixture(t, st, location.Config{}, nil)
		f.onDuty(t, "quiet", 48.1, 11.5)
		f.onDuty(t, "chatty", 48.2, 11.6)
		f.clock.Add(4 * time.Minute)
		if _, err := f.svc.Report(ctx, "chatty", []api.Fix{f.fixAt(48.2, 11.6, 0)}); err != nil {
			t.Fatal(err)
		}
		f.clock.Add(2 * time.Minute) // quiet: 6 minutes old; chatty: 2
		if err := f.svc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := f.svc.NearbyTechnicians(ctx, location.TechQuery{Lat: 48.1, Lon: 11.5, RadiusM: 100_000})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].TechnicianID != "chatty" {
			t.Fatalf("after sweep: %+v, want only chatty", got)
		}
		// Reporting again brings the quiet one back.
		if _, err := f.svc.Report(ctx, "quiet", []api.Fix{f.fixAt(48.1, 11.5, 0)}); err != nil {
			t.Fatal(err)
		}
		got, _ = f.svc.NearbyTechnicians(ctx, location.TechQuery{Lat: 48.1, Lon: 11.5, RadiusM: 100_000})
		if len(got) != 2 {
			t.Fatalf("after a fresh fix: %+v", got)
		}
	})
}

// TestNearbyRareSkillCombination: forty technicians with the first skill
// only sit between the centre and the two who have both; a query for
// both skills still finds those two (the scan widens), nearest first.
func TestNearbyRareSkillCombination(t *testing.T) {
	backends(t, func(t *testing.T, st state.Store) {
		f := newFixture(t, st, location.Config{}, nil)
		for i := range 40 {
			f.onDuty(t, fmt.Sprintf("gas-only-%d", i), 52.52+float64(i)*0.0005, 13.405, "gas")
		}
		f.onDuty(t, "both-far", 52.70, 13.405, "gas", "hvac")
		f.onDuty(t, "both-near", 52.65, 13.405, "hvac", "gas")
		got, err := f.svc.NearbyTechnicians(ctx, location.TechQuery{Lat: 52.52, Lon: 13.405, RadiusM: 50_000, Skills: []string{"gas", "hvac"}, K: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].TechnicianID != "both-near" || got[1].TechnicianID != "both-far" {
			t.Fatalf("got %+v, want both-near then both-far", got)
		}
		// Fewer than k exist: all of them, and no error.
		got, err = f.svc.NearbyTechnicians(ctx, location.TechQuery{Lat: 52.52, Lon: 13.405, RadiusM: 50_000, Skills: []string{"gas", "hvac"}, K: 10})
		if err != nil || len(got) != 2 {
			t.Fatalf("k above the matches: %+v %v", got, err)
		}
	})
}

// TestDeleteStore: a deleted store is gone from lookups and from nearby
// queries; deleting it again is not found.
func TestDeleteStore(t *testing.T) {
	backends(t, func(t *testing.T, st state.Store) {
		f := newFixture(t, st, location.Config{}, nil)
		for _, id := range []string{"keep", "drop"} {
			if _, err := f.svc.PutStore(ctx, api.Store{ID: id, Name: id, Lat: 52.52, Lon: 13.405, TimeZone: "Europe/Berlin",
				Hours: "daily 00:00-24:00", Capabilities: []string{api.CapabilityPickup}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.svc.DeleteStore(ctx, "drop"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.GetStore(ctx, "drop"); !errors.Is(err, location.ErrNotFound) {
			t.Fatalf("get after delete: %v", err)
		}
		got, err := f.svc.NearbyStores(ctx, location.StoreQuery{Lat: 52.52, Lon: 13.405})
		if err != nil || len(got) != 1 || got[0].ID != "keep" {
			t.Fatalf("nearby after delete: %+v %v", got, err)
		}
		if err := f.svc.DeleteStore(ctx, "drop"); !errors.Is(err, location.ErrNotFound) {
			t.Fatalf("second delete: %v, want ErrNotFound", err)
		}
	})
}
