package mobile

import (
	"context"
	"sync"
	"time"

	"github.com/switchboard/switchboard/api"
	sdk "github.com/switchboard/switchboard/mobile-sdk"
)

// Reporter sends the signed-in technician's GPS fixes: the app feeds it
// from the platform's location callback (Android's FusedLocationProvider,
// iOS's CLLocationManager); it batches them, keeps them while offline and
// slows down while the technician stands still.
type Reporter struct {
	r *sdk.Reporter

	mu     sync.Mutex
	cancel context.CancelFunc // of the running loop; nil when stopped
	done   chan struct{}      // closed when the running loop returns
}

// NewReporter returns a reporter. movingSeconds and stillSeconds are the
// send intervals while moving and standing still, maxBuffer the fixes
// kept offline; 0 means the defaults (10 s, 60 s, 5,000).
func (c *Client) NewReporter(movingSeconds, stillSeconds, maxBuffer int) *Reporter {
	return &Reporter{r: c.c.NewReporter(sdk.ReporterConfig{
		MovingInterval: time.Duration(movingSeconds) * time.Second,
		StillInterval:  time.Duration(stillSeconds) * time.Second,
		MaxBuffer:      maxBuffer,
	})}
}

// AddFix records one fix as the platform reported it: degrees, accuracy
// in metres (0: unknown), speed in m/s, heading in degrees, and the time
// the phone took it in Unix milliseconds.
func (r *Reporter) AddFix(lat, lon, accuracyM, speedMps, heading float64, atUnixMillis int64) {
	r.r.Add(api.Fix{Lat: lat, Lon: lon, AccuracyM: accuracyM, SpeedMps: speedMps, Heading: heading, Time: time.UnixMilli(atUnixMillis)})
}

// Start sends in the background until Stop; starting a started reporter
// does nothing.
func (r *Reporter) Start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r.cancel, r.done = cancel, done
	go func() {
		defer close(done)
		_ = r.r.Run(ctx) // ends on Stop or when signed out
	}()
}

// Stop makes one last attempt to send what is buffered (what fails stays
// for the next Start) and returns when the background loop has ended.
func (r *Reporter) Stop() {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.cancel, r.done = nil, nil
	r.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// Wake sends now, e.g. when the platform says the network is back.
func (r *Reporter) Wake() { r.r.Wake() }

// Flush sends everything buffered now.
func (r *Reporter) Flush() error {
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	return wrap(r.r.Flush(ctx))
}

// Pending is how many fixes wait to be sent.
func (r *Reporter) Pending() int { return r.r.Pending() }

// Dropped is how many fixes were given up: past the offline buffer, too
// old, or refused by the gateway.
func (r *Reporter) Dropped() int { return r.r.Dropped() }
