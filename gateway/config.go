package gateway

import (
	"errors"
	"time"
)

// Config holds the gateway's HTTP settings. Every zero value means the
// default stated beside the field.
type Config struct {
	// BodyLimit is the largest request body in bytes on ordinary routes.
	// Zero means 1 MiB.
	BodyLimit int
	// ReadTimeout bounds reading one whole request, headers included, so a
	// client that trickles its headers (slowloris) is cut off. Zero means 10s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing one response. Zero means 30s.
	WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle for this long. Zero
	// means 60s.
	IdleTimeout time.Duration
	// HeaderLimit is the read buffer, and so the largest request head, in
	// bytes; larger heads get 431. Zero means 16 KiB.
	HeaderLimit int
	// MaxConns caps concurrent connections. Zero means 100,000.
	MaxConns int
	// RateIP is the number of requests one client IP may make per
	// RateWindow. Zero means 3,000 (generous: carrier NAT puts many phones
	// behind one address); negative disables.
	RateIP int
	// RateSubject is the number of requests one authenticated subject may
	// make per RateWindow. Zero means 1,200; negative disables.
	RateSubject int
	// SocketsPerUser is the number of WebSockets and event streams one user
	// may hold open on one node at once. Zero means 32 (a console open in a
	// few tabs, or an app with its feed, call and appliance relays, stays
	// well under it); negative disables.
	SocketsPerUser int
	// RateWindow is the fixed window of both rate limits. Zero means 1m.
	RateWindow time.Duration
	// CORSOrigins are the browser origins allowed to call the API; empty
	// means none (same-origin only: the console is served by the gateway).
	CORSOrigins []string
	// TrustedProxies are addresses or CIDRs of load balancers whose
	// X-Forwarded-For is believed for the client IP. Empty trusts none.
	TrustedProxies []string
	// IdempotencyTTL is how long an Idempotency-Key is remembered. Zero
	// means 24h.
	IdempotencyTTL time.Duration
}

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defInt(&c.BodyLimit, 1<<20)
	defInt(&c.HeaderLimit, 16<<10)
	defInt(&c.MaxConns, 100_000)
	defInt(&c.RateIP, 3000)
	defInt(&c.RateSubject, 1200)
	defInt(&c.SocketsPerUser, 32)
	def(&c.ReadTimeout, 10*time.Second)
	def(&c.WriteTimeout, 30*time.Second)
	def(&c.IdleTimeout, 60*time.Second)
	def(&c.RateWindow, time.Minute)
	def(&c.IdempotencyTTL, 24*time.Hour)
	return c
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.BodyLimit < 0:
		return errors.New("body limit must not be negative")
	case c.HeaderLimit < 0 || (c.HeaderLimit > 0 && c.HeaderLimit < 4096):
		return errors.New("header limit must be at least 4096 bytes")
	case c.ReadTimeout < 0, c.WriteTimeout < 0, c.IdleTimeout < 0, c.RateWindow < 0, c.IdempotencyTTL < 0:
		return errors.New("timeouts and windows must not be negative")
	}
	return nil
}
