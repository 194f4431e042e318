package location_test

import (
	"errors"
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
