package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/internal/poll"
	sdk "github.com/switchboard/switchboard/mobile-sdk"
)

// tunnel is a transport that fails every request while offline is set: a
// phone in a tunnel.
type tunnel struct{ offline atomic.Bool }

func (f *tunnel) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.offline.Load() {
		return nil, errors.New("network is unreachable")
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestReporterOfflineAndStill: through a real gateway, the reporter keeps
// fixes while offline and delivers them all on reconnect; standing still
// it keeps few fixes and slows down; a refused fix does not block the
// queue.
func TestReporterOfflineAndStill(t *testing.T) {
	s := startGateway(t, auth.Config{})
	loc := s.loc
	pair, err := s.issuer.Pair(context.Background(), "tech-7", auth.RoleTechnician, nil)
	if err != nil {
		t.Fatal(err)
	}
	link := &tunnel{}
	c, err := sdk.New(sdk.Config{BaseURL: s.url, HTTPClient: &http.Client{Transport: link, Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SignIn(api.TokenPair{AccessToken: pair.AccessToken, RefreshToken: pair.RefreshToken})
	r := c.NewReporter(sdk.ReporterConfig{MaxBatch: 7})

	// Driving through a tunnel: 20 fixes, 1 Hz, 50 m apart.
	link.offline.Store(true)
	start := time.Now().Add(-time.Minute)
	for i := range 20 {
		r.Add(api.Fix{Lat: 52.5 + float64(i)*0.00045, Lon: 13.4, SpeedMps: 14, Time: start.Add(time.Duration(i) * time.Second)})
	}
	if err := r.Flush(t.Context()); err == nil {
		t.Fatal("flush offline succeeded")
	}
	if r.Pending() != 20 {
		t.Fatalf("pending %d after a failed flush, want 20", r.Pending())
	}
	if r.Interval() != 10*time.Second {
		t.Fatalf("moving interval %v", r.Interval())
	}
	// Back online: everything arrives, in batches of 7.
	link.offline.Store(false)
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	hist, err := loc.History(t.Context(), "tech-7", time.Time{})
	if err != nil || len(hist) != 20 || r.Pending() != 0 {
		t.Fatalf("history %d fixes (%v), pending %d", len(hist), err, r.Pending())
	}
	// Parked: 30 jittery fixes within a few metres keep one, and the
	// reporter slows down.
	last := hist[len(hist)-1]
	for i := range 30 {
		r.Add(api.Fix{Lat: last.Lat + float64(i%3)*0.00002, Lon: 13.4, Time: last.Time.Add(time.Duration(i+1) * time.Second)})
	}
	if r.Pending() > 1 {
		t.Fatalf("standing still kept %d fixes", r.Pending())
	}
	if r.Interval() != 60*time.Second {
		t.Fatalf("still interval %v", r.Interval())
	}
	// A fix the gateway refuses (latitude beyond the geo index) is dropped,
	// not retried forever.
	r.Add(api.Fix{Lat: 86, Lon: 13.4, Time: time.Now()})
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r.Pending() != 0 || r.Dropped() == 0 {
		t.Fatalf("pending %d dropped %d", r.Pending(), r.Dropped())
	}
}

// TestMobileReporter: the bindable reporter, as a Kotlin or Swift app
// drives it: fixes from the location callback, Start, Stop (which sends
// what is left), and a second Start after Stop.
func TestMobileReporter(t *testing.T) {
	s := startGateway(t, auth.Config{})
	loc := s.loc
	c := signInMobile(t, s.issuer, s.url, "tech-8", auth.RoleTechnician)
	// Long intervals: only Wake and Stop send in this test.
	r := c.NewReporter(3600, 3600, 0)
	start := time.Now().Add(-time.Minute)
	for i := range 5 {
		r.AddFix(52.5+float64(i)*0.001, 13.4, 8, 12, 90, start.Add(time.Duration(i)*time.Second).UnixMilli())
	}
	r.Start()
	r.Start() // no second loop
	r.Wake()
	poll.Until(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := r.Pending(); n != 0 {
			return fmt.Errorf("%d fixes still pending", n)
		}
		return nil
	})
	r.AddFix(52.505, 13.4, 8, 12, 90, start.Add(10*time.Second).UnixMilli())
	r.Stop() // the last attempt sends the sixth
	r.Stop()
	hist, err := loc.History(t.Context(), "tech-8", time.Time{})
	if err != nil || len(hist) != 6 || r.Pending() != 0 || r.Dropped() != 0 {
		t.Fatalf("history %d fixes (%v), pending %d, dropped %d", len(hist), err, r.Pending(), r.Dropped())
	}
	if hist[0].AccuracyM != 8 || hist[0].SpeedMps != 12 || hist[0].Heading != 90 {
		t.Fatalf("fix fields lost on the way: %+v", hist[0])
	}
	r.Start()
	r.AddFix(91, 13.4, 0, 0, 0, time.Now().UnixMilli()) // refused by the gateway
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	if r.Dropped() != 1 {
		t.Fatalf("dropped %d, want the refused fix", r.Dropped())
	}
}
