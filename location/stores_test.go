package location_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/location"
	"github.com/switchboard/switchboard/state"
)

const storesCSV = `id,name,lat,lon,time_zone,hours,capabilities,stock
berlin-mitte,Berlin Mitte,52.5200,13.4050,Europe/Berlin,daily 00:00-24:00,pickup|repair,PRJ-LAMP:3|PRJ-FAN:0
berlin-night,Berlin Night,52.5210,13.4060,Europe/Berlin,mon-sun 22:00-02:00,pickup,PRJ-LAMP:1
bad-lat,Broken,91,13.4,Europe/Berlin,daily 09:00-18:00,pickup,
bad-zone,Broken,52.5,13.4,Mars/Olympus,daily 09:00-18:00,pickup,
bad"quote,Broken,1,2,UTC,daily 00:00-24:00,,
tokyo,Tokyo,35.6762,139.6503,Asia/Tokyo,daily 00:00-24:00,repair,PRJ-LAMP:5
short,row
`

func TestStoresImportAndNearby(t *testing.T) {
	backends(t, func(t *testing.T, st state.Store) {
		f := newFixture(t, st, location.Config{}, nil)
		res, err := f.svc.ImportCSV(ctx, strings.NewReader(storesCSV))
		if err != nil {
			t.Fatal(err)
		}
		if res.Imported != 3 {
			t.Fatalf("imported %d, want 3: %+v", res.Imported, res.Errors)
		}
		lines := map[int]bool{}
		for _, e := range res.Errors {
			lines[e.Line] = true
		}
		for _, l := range []int{4, 5, 6, 8} {
			if !lines[l] {
				t.Errorf("line %d not reported: %+v", l, res.Errors)
			}
		}
		if len(res.Errors) < 3 {
			t.Errorf("broken rows reported: %+v", res.Errors)
		}
		got, err := f.svc.NearbyStores(ctx, location.StoreQuery{Lat: 52.52, Lon: 13.405, RadiusM: 10_000, SKU: "PRJ-LAMP", OpenNow: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 || got[0].ID != "berlin-mitte" || !got[0].OpenNow {
			t.Fatalf("nearby %+v", got)
		}
		// The night store is open at 23:00 Berlin time and closed at noon.
		berlin, _ := time.LoadLocation("Europe/Berlin")
		f.clock.t = time.Date(2026, 3, 4, 23, 0, 0, 0, berlin)
		got, _ = f.svc.NearbyStores(ctx, location.StoreQuery{Lat: 52.52, Lon: 13.405, OpenNow: true, SKU: "PRJ-LAMP"})
		if len(got) != 2 {
			t.Fatalf("at 23:00: %+v", got)
		}
		f.clock.t = time.Date(2026, 3, 5, 12, 0, 0, 0, berlin)
		got, _ = f.svc.NearbyStores(ctx, location.StoreQuery{Lat: 52.52, Lon: 13.405, OpenNow: true, SKU: "PRJ-LAMP"})
		if len(got) != 1 {
			t.Fatalf("at noon: %+v", got)
		}
		got, _ = f.svc.NearbyStores(ctx, location.StoreQuery{Lat: 52.52, Lon: 13.405, SKU: "PRJ-FAN"})
		if len(got) != 0 {
			t.Fatalf("out of stock SKU found: %+v", got)
		}
		geo := `{"type":"FeatureCollection","features":[
{"type":"Feature","geometry":{"type":"Point","coordinates":[2.3522,48.8566]},"properties":{"id":"paris","name":"Paris","time_zone":"Europe/Paris","hours":"mon-sat 10:00-19:00","capabilities":["pickup"],"stock":{"PRJ-LAMP":2}}},
{"type":"Feature","geometry":{"type":"Point","coordinates":[2.3,95]},"properties":{"id":"pole","name":"Pole","time_zone":"UTC","hours":"daily 00:00-24:00"}},
{"type":"Feature","geometry":null,"properties":{}}]}`
		gres, err := f.svc.ImportGeoJSON(ctx, []byte(geo))
		if err != nil {
			t.Fatal(err)
		}
		if gres.Imported != 1 || len(gres.Errors) != 2 || *gres.Errors[0].Feature != 1 {
			t.Fatalf("geojson %+v", gres)
		}
		if _, err := f.svc.ImportCSV(ctx, strings.NewReader("id,name,color\n")); !errors.Is(err, location.ErrInvalid) {
			t.Fatalf("bad header: %v", err)
		}
	})
}
