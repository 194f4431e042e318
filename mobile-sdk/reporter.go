package sdk

import (
	"context"
	"errors"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/switchboard/switchboard/api"
)

// ReporterConfig tunes a Reporter. Zero values mean the stated defaults.
type ReporterConfig struct {
	// MovingInterval is how often fixes are sent while the technician
	// moves. Zero means 10s: an ETA a customer watches stays current
	// without a request a second.
	MovingInterval time.Duration
	// StillInterval is how often fixes are kept and sent while standing
	// still. Zero means 60s: enough to stay "available" on the server
	// (a position goes stale after 5 minutes) at a sixth of the traffic.
	StillInterval time.Duration
	// StillRadiusM is how far fixes may wander (GPS jitter) and still count
	// as standing still. Zero means 25 m.
	StillRadiusM float64
	// MaxBatch is the most fixes per request. Zero means 100; the gateway
	// takes at most 500.
	MaxBatch int
	// MaxBuffer is how many fixes are kept while offline; past it the
	// oldest go. Zero means 5,000: 83 minutes at 1 Hz moving, days still.
	MaxBuffer int
}

// maxFixAge mirrors the gateway's refusal of fixes older than 12 hours:
// older ones are dropped before sending, or they would poison a batch.
const maxFixAge = 12 * time.Hour

// stillSpeedMps is the reported speed under which a fix counts as still.
const stillSpeedMps = 1.0

// Reporter sends a technician's GPS fixes to the gateway: it batches
// them, keeps them while the phone is offline and sends them when the
// network is back, and slows down while the technician stands still. Feed
// it with Add from the platform's location callback and run Run (or call
// Flush yourself). It is safe for concurrent use.
type Reporter struct {
	c   *Client
	cfg ReporterConfig

	mu       sync.Mutex
	buf      []api.Fix
	inflight int // fixes at the front of buf being sent
	anchor   *api.Fix
	still    bool
	dropped  int
	wake     chan struct{}
	sending  sync.Mutex // one Flush at a time
}

// NewReporter returns a Reporter sending as the signed-in technician.
func (c *Client) NewReporter(cfg ReporterConfig) *Reporter {
	if cfg.MovingInterval <= 0 {
		cfg.MovingInterval = 10 * time.Second
	}
	if cfg.StillInterval <= 0 {
		cfg.StillInterval = 60 * time.Second
	}
	if cfg.StillRadiusM <= 0 {
		cfg.StillRadiusM = 25
	}
	if cfg.MaxBatch <= 0 || cfg.MaxBatch > 500 {
		cfg.MaxBatch = 100
	}
	if cfg.MaxBuffer <= 0 {
		cfg.MaxBuffer = 5000
	}
	return &Reporter{c: c, cfg: cfg, wake: make(chan struct{}, 1)}
}

// Add records one fix. While the technician stands still (within
// StillRadiusM of the last kept fix, slower than 1 m/s) it keeps one fix
// per StillInterval and drops the rest; moving, it keeps every fix.
func (r *Reporter) Add(f api.Fix) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a := r.anchor; a != nil {
		near := distanceM(a.Lat, a.Lon, f.Lat, f.Lon) <= r.cfg.StillRadiusM && f.SpeedMps < stillSpeedMps
		wasStill := r.still
		r.still = near
		if near && f.Time.Sub(a.Time) < r.cfg.StillInterval {
			return // standing still: this fix says nothing new
		}
		if !near && wasStill {
			r.poke() // started moving: send soon
		}
	}
	fc := f
	r.anchor = &fc
	r.buf = append(r.buf, f)
	if len(r.buf) > r.cfg.MaxBuffer {
		// Drop the oldest fix not being sent right now.
		i := min(r.inflight, len(r.buf)-1)
		r.buf = append(r.buf[:i], r.buf[i+1:]...)
		r.dropped++
	}
}

// Interval is how long Run waits between sends now: MovingInterval, or
// StillInterval while standing still.
func (r *Reporter) Interval() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.still {
		return r.cfg.StillInterval
	}
	return r.cfg.MovingInterval
}

// Pending is how many fixes wait to be sent; Dropped how many were lost
// to the buffer bound.
func (r *Reporter) Pending() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.buf) }

// Dropped is how many fixes the buffer bound discarded.
func (r *Reporter) Dropped() int { r.mu.Lock(); defer r.mu.Unlock(); return r.dropped }

// Wake makes Run send now, e.g. when the platform reports the network is
// back.
func (r *Reporter) Wake() { r.mu.Lock(); r.poke(); r.mu.Unlock() }

func (r *Reporter) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Flush sends every buffered fix, MaxBatch at a time. A network failure,
// a 5xx or a 429 keeps the fixes for the next try and returns the error;
// a batch the gateway refuses as invalid (400, 422) can never succeed and
// is dropped, so one bad fix cannot block the queue.
func (r *Reporter) Flush(ctx context.Context) error {
	r.sending.Lock()
	defer r.sending.Unlock()
	for {
		r.mu.Lock()
		cutoff := time.Now().Add(-maxFixAge)
		for len(r.buf) > 0 && r.buf[0].Time.Before(cutoff) {
			r.buf = r.buf[1:]
			r.dropped++
		}
		n := min(len(r.buf), r.cfg.MaxBatch)
		batch := append([]api.Fix(nil), r.buf[:n]...)
		r.inflight = n
		r.mu.Unlock()
		if n == 0 {
			return nil
		}
		err := r.c.Send(ctx, Request{Method: http.MethodPost, Path: "/v1/technicians/me/positions", Body: api.PositionBatch{Fixes: batch}}, nil)
		status := StatusCode(err)
		r.mu.Lock()
		r.inflight = 0
		if err == nil || status == http.StatusBadRequest || status == http.StatusUnprocessableEntity {
			r.buf = r.buf[min(n, len(r.buf)):]
			if err != nil {
				r.dropped += n
			}
		}
		r.mu.Unlock()
		if err != nil && status != http.StatusBadRequest && status != http.StatusUnprocessableEntity {
			return err
		}
	}
}

// Run sends buffered fixes every Interval (or at once after Wake) until
// ctx ends; failures are retried at the next tick. It returns nil when ctx
// ends, after one last attempt, or ErrSignedOut.
func (r *Reporter) Run(ctx context.Context) error {
	for {
		t := time.NewTimer(r.Interval())
		select {
		case <-ctx.Done():
			t.Stop()
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = r.Flush(fctx)
			cancel()
			return nil
		case <-t.C:
		case <-r.wake:
			t.Stop()
		}
		if err := r.Flush(ctx); errors.Is(err, ErrSignedOut) {
			return err
		}
	}
}

// distanceM is the haversine distance in metres.
func distanceM(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	u := math.Sin((lat2 - lat1) * rad / 2)
	v := math.Sin((lon2 - lon1) * rad / 2)
	a := u*u + math.Cos(lat1*rad)*math.Cos(lat2*rad)*v*v
	return 2 * 6371000 * math.Asin(math.Sqrt(a))
}
