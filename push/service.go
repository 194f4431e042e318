package push

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/ticket"
)

// StreamOutbox is the outbox: every notification is appended here before
// any send.
const StreamOutbox = "push:outbox"

// Config tunes delivery. Every zero value means the default beside it.
type Config struct {
	// MaxAttempts is how many sends a device gets before the rest of a
	// notification is dead-lettered. Zero means 8: with BaseDelay 1s
	// doubling to MaxDelay that spans about 4 minutes of jittered retries,
	// longer than FCM's typical brownouts, short enough that a "technician
	// arriving" is not delivered after the technician left.
	MaxAttempts int
	// BaseDelay is the first retry's backoff cap. Zero means 1s.
	BaseDelay time.Duration
	// MaxDelay caps the backoff. Zero means 2m: the SDK's own cap.
	MaxDelay time.Duration
	// Workers is how many batch loops each node runs. Zero means 4: each
	// batch fans out to the SDK's 50 concurrent requests, so 4 keep 200
	// sends in flight, enough for 10,000/s at 20 ms per round trip.
	Workers int
	// Batch is how many notifications one read takes. Zero means 500,
	// one SendEach call's limit.
	Batch int
	// ClaimIdle is how long a notification may stay unacknowledged before
	// another node takes it over (its node died). Zero means 5m. A batch
	// gets half of it to send and settle, which must cover the SDK's own
	// 503 retries (4, each waiting up to its 2-minute Retry-After cap
	// only in pathological cases; seconds in practice).
	ClaimIdle time.Duration
	// Poll is how often parked retries are checked. Zero means 250ms.
	Poll time.Duration
	// MaxFeedback bounds each admin list (failures, pruned tokens); the
	// oldest are dropped. Zero means 10,000.
	MaxFeedback int
	// DeepLink prefixes a ticket ID to make the link the app opens. Zero
	// means "switchboard://tickets/".
	DeepLink string
	// AllowInsecureWebPush accepts http:// Web Push endpoints (tests).
	AllowInsecureWebPush bool
}

func (c Config) withDefaults() Config {
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	if c.BaseDelay <= 0 {
		c.BaseDelay = time.Second
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = 2 * time.Minute
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.Batch <= 0 {
		c.Batch = fcmBatch
	}
	if c.ClaimIdle <= 0 {
		c.ClaimIdle = 5 * time.Minute
	}
	if c.Poll <= 0 {
		c.Poll = 250 * time.Millisecond
	}
	if c.MaxFeedback <= 0 {
		c.MaxFeedback = 10_000
	}
	if c.DeepLink == "" {
		c.DeepLink = "switchboard://tickets/"
	}
	return c
}

// Service is push on the state seam: the registry, settings, the outbox
// and the feedback lists. It holds no state of its own beyond this node's
// counters, so every node runs one over the same backend.
type Service struct {
	st       state.Store
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	senders  map[string]Sender // by platform
	tickets  *ticket.Service
	presence *ticket.Presence
	stats    counters
}

// Option configures a Service.
type Option func(*Service)

// WithLogger sets the logger. The default discards.
func WithLogger(l *slog.Logger) Option {
	return func(s *Service) { s.log = l.With("component", "push") }
}

// WithClock sets the clock, for tests.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithFCM sends android and ios devices' notifications through f.
func WithFCM(f Sender) Option {
	return func(s *Service) { s.senders[api.PlatformAndroid], s.senders[api.PlatformIOS] = f, f }
}

// WithWebPush sends web devices' notifications through w.
func WithWebPush(w Sender) Option { return func(s *Service) { s.senders[api.PlatformWeb] = w } }

// WithTickets appends a push_sent event to the ticket for every
// notification's outcome.
func WithTickets(t *ticket.Service) Option { return func(s *Service) { s.tickets = t } }

// WithPresence lets rules skip users who have the live feed open.
func WithPresence(p *ticket.Presence) Option { return func(s *Service) { s.presence = p } }

// New returns the push service over st.
func New(st state.Store, cfg Config, opts ...Option) *Service {
	s := &Service{st: st, cfg: cfg.withDefaults(), log: slog.New(slog.DiscardHandler), now: time.Now, senders: map[string]Sender{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

func newID(prefix string) string { return prefix + strings.ToLower(rand.Text()[:20]) }

// Enqueue writes notifications to the outbox in one append; when it
// returns nil they are durable and will be sent at least once. Empty IDs
// are assigned.
func (s *Service) Enqueue(ctx context.Context, ns ...Notification) error {
	if len(ns) == 0 {
		return nil
	}
	vals := make([][]byte, 0, len(ns))
	for i := range ns {
		n := &ns[i]
		if err := n.check(); err != nil {
			return err
		}
		for k, v := range n.Params {
			n.Params[k] = clip(v, maxParam)
		}
		if n.ID == "" {
			n.ID = newID("pn_")
		}
		if n.CreatedAt.IsZero() {
			n.CreatedAt = s.now().UTC()
		}
		raw, err := json.Marshal(n)
		if err != nil {
			return err
		}
		vals = append(vals, raw)
	}
	_, err := s.st.XAdd(ctx, StreamOutbox, vals...)
	return err
}

// check validates what a caller of Enqueue controls.
func (n *Notification) check() error {
	if _, ok := kinds[n.Kind]; !ok {
		return fmt.Errorf("%w: unknown kind %q", ErrInvalid, clip(string(n.Kind), 40))
	}
	if err := checkUser(n.Recipient); err != nil {
		return err
	}
	if len(n.Params) > maxParams {
		return fmt.Errorf("%w: more than %d params", ErrInvalid, maxParams)
	}
	return nil
}
