package webhook

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/ticket"
)

// Config tunes subscriptions and delivery. Every zero value means the
// default in the field's comment.
type Config struct {
	// AllowPrivate lets subscriptions target loopback, private and
	// link-local addresses (an in-cluster CRM, tests). Default false:
	// refused at creation and at dial time.
	AllowPrivate bool
	// Timeout bounds one delivery: connect, TLS, request and answer.
	// Default 5s (Svix's receivers are told to answer within 15s; ours
	// are CRMs on the internet and a slow one only delays itself).
	Timeout time.Duration
	// Workers is how many deliveries one node runs at once. Default 16.
	Workers int
	// PerSubscription caps one subscription's deliveries in flight on a
	// node, so a slow target cannot occupy every worker. Default
	// Workers/4, at least 1.
	PerSubscription int
	// MaxAttempts is how many times a job is tried before it becomes a
	// dead letter. Default 8 (with the default delays, about 42 minutes
	// of retries on average, up to 85 at worst).
	MaxAttempts int
	// BaseDelay is the backoff before the second attempt; each later one
	// doubles, with full jitter. Default 10s.
	BaseDelay time.Duration
	// MaxDelay caps the backoff. Default 1h.
	MaxDelay time.Duration
	// ClaimIdle is how long a job or event may stay unacknowledged with a
	// node before another node takes it over. It must exceed a delivery's
	// Timeout by a margin, or live deliveries get repeated. Default 1m.
	ClaimIdle time.Duration
	// Poll is how often due retries are moved back to the jobs stream.
	// Default 1s.
	Poll time.Duration
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Timeout, 5*time.Second)
	def(&c.BaseDelay, 10*time.Second)
	def(&c.MaxDelay, time.Hour)
	def(&c.ClaimIdle, time.Minute)
	def(&c.Poll, time.Second)
	if c.ClaimIdle <= c.Timeout {
		// A live delivery must never look abandoned.
		c.ClaimIdle = 2 * c.Timeout
	}
	if c.Workers <= 0 {
		c.Workers = 16
	}
	if c.PerSubscription <= 0 {
		c.PerSubscription = max(1, c.Workers/4)
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	return c
}

// MaxSubscriptions bounds the subscriptions of one deployment: every
// event is matched against all of them.
const MaxSubscriptions = 1000

// maxEventTypes bounds a subscription's filter: there are fewer types.
const maxEventTypes = 64

// Keys on the state seam.
const (
	// StreamJobs holds delivery jobs: one per event and subscription.
	StreamJobs  = "webhook-jobs"
	groupEvents = "webhooks"
	groupJobs   = "delivery"
	ixSubs      = "wh:subs" // subscription IDs by creation time
	ixDead      = "wh:dead" // dead-letter IDs by failure time (unix ms)
)

func keySub(id string) string    { return "wh:sub:" + id }
func keyDead(id string) string   { return "wh:dead:" + id }
func keyReplay(id string) string { return "wh:rp:" + id }

// subscription is the stored record. The secret is kept as given: every
// delivery must be signed with it.
type subscription struct {
	ID         string          `json:"id"`
	URL        string          `json:"url"`
	EventTypes []api.EventType `json:"event_types"`
	Secret     string          `json:"secret"`
	CreatedAt  time.Time       `json:"created_at"`
	CreatedBy  string          `json:"created_by"`
	Active     bool            `json:"active"`
}

func (s *subscription) view() api.Webhook {
	types := s.EventTypes
	if types == nil {
		types = []api.EventType{}
	}
	return api.Webhook{ID: s.ID, URL: s.URL, EventTypes: types, CreatedAt: s.CreatedAt, CreatedBy: s.CreatedBy, Active: s.Active}
}

// matches reports whether the subscription wants an event of type t.
func (s *subscription) matches(t api.EventType) bool {
	if !s.Active {
		return false
	}
	if len(s.EventTypes) == 0 {
		return true
	}
	for _, x := range s.EventTypes {
		if x == t {
			return true
		}
	}
	return false
}

// Service manages subscriptions and dead letters. It is safe for
// concurrent use and holds no state of its own beyond configuration and
// the delivery counters of this node's Dispatcher.
type Service struct {
	st    state.Store
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	stats counters
}

// Option configures a Service.
type Option func(*Service)

// WithLogger sets the logger. The default discards.
func WithLogger(l *slog.Logger) Option {
	return func(s *Service) { s.log = l.With("component", "webhook") }
}

// New returns the webhook service over st.
func New(st state.Store, cfg Config, opts ...Option) *Service {
	s := &Service{st: st, cfg: cfg.withDefaults(), log: slog.New(slog.DiscardHandler), now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

func newID(prefix string) string { return prefix + strings.ToLower(rand.Text()[:20]) }

// Create validates and stores a subscription and returns it with its
// secret, which no later call shows again.
func (s *Service) Create(ctx context.Context, createdBy string, req api.CreateWebhookRequest) (api.WebhookCreated, error) {
	u, err := checkURL(ctx, strings.TrimSpace(req.URL), s.cfg.AllowPrivate, defaultLookup)
	if err != nil {
		return api.WebhookCreated{}, err
	}
	if len(req.EventTypes) > maxEventTypes {
		return api.WebhookCreated{}, fmt.Errorf("%w: event_types: at most %d", ErrInvalid, maxEventTypes)
	}
	var types []api.EventType
	seen := map[api.EventType]bool{}
	for _, t := range req.EventTypes {
		if !ticket.KnownType(t) {
			return api.WebhookCreated{}, fmt.Errorf("%w: event_types: unknown type %q", ErrInvalid, truncate(string(t), 64))
		}
		if !seen[t] {
			seen[t] = true
			types = append(types, t)
		}
	}
	secret := req.Secret
	if secret == "" {
		secret = newSecret()
	} else if _, err := secretKey(secret); err != nil {
		return api.WebhookCreated{}, err
	}
	n, err := s.st.ZCard(ctx, ixSubs)
	if err != nil {
		return api.WebhookCreated{}, err
	}
	if n >= MaxSubscriptions {
		return api.WebhookCreated{}, fmt.Errorf("%w: at most %d webhooks; delete one first", ErrInvalid, MaxSubscriptions)
	}
	sub := subscription{
		ID:         newID("wh_"),
		URL:        u.String(),
		EventTypes: types,
		Secret:     secret,
		CreatedAt:  s.now().UTC(),
		CreatedBy:  createdBy,
		Active:     true,
	}
	raw, err := json.Marshal(sub)
	if err != nil {
		return api.WebhookCreated{}, err
	}
	// Record first, index second: a crash between leaves an unlisted
	// record, never a listed ID without a record.
	if err := s.st.Set(ctx, keySub(sub.ID), raw, 0); err != nil {
		return api.WebhookCreated{}, err
	}
	if err := s.st.ZAdd(ctx, ixSubs, sub.ID, float64(sub.CreatedAt.UnixMilli())); err != nil {
		return api.WebhookCreated{}, err
	}
	s.log.Info("webhook created", "webhook", sub.ID, "host", u.Host, "by", createdBy)
	return api.WebhookCreated{Webhook: sub.view(), Secret: secret}, nil
}

// List returns every subscription, oldest first, without secrets.
func (s *Service) List(ctx context.Context) (api.WebhookList, error) {
	subs, err := s.subscriptions(ctx)
	if err != nil {
		return api.WebhookList{}, err
	}
	out := api.WebhookList{Webhooks: make([]api.Webhook, 0, len(subs))}
	for _, sub := range subs {
		out.Webhooks = append(out.Webhooks, sub.view())
	}
	return out, nil
}

// Delete removes a subscription. Its queued jobs are dropped when a
// worker picks them up; its dead letters stay until replayed (and then
// dropped too).
func (s *Service) Delete(ctx context.Context, id string) error {
	if _, err := s.subscription(ctx, id); err != nil {
		return err
	}
	if _, err := s.st.ZRem(ctx, ixSubs, id); err != nil {
		return err
	}
	if err := s.st.Delete(ctx, keySub(id)); err != nil {
		return err
	}
	s.log.Info("webhook deleted", "webhook", id)
	return nil
}

// subscription loads one record.
func (s *Service) subscription(ctx context.Context, id string) (*subscription, error) {
	if id == "" || len(id) > 64 {
		return nil, ErrNotFound
	}
	raw, err := s.st.Get(ctx, keySub(id))
	if errors.Is(err, state.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	var sub subscription
	if err := json.Unmarshal(raw, &sub); err != nil {
		return nil, fmt.Errorf("webhook %s: corrupt record: %w", id, err)
	}
	return &sub, nil
}

// subscriptions loads every record, oldest first, skipping IDs whose
// record is gone (a delete between the two reads).
func (s *Service) subscriptions(ctx context.Context) ([]*subscription, error) {
	ms, err := s.st.ZRange(ctx, ixSubs, state.RangeOptions{Min: math.Inf(-1), Max: math.Inf(1), Limit: MaxSubscriptions})
	if err != nil {
		return nil, err
	}
	out := make([]*subscription, 0, len(ms))
	for _, m := range ms {
		sub, err := s.subscription(ctx, m.Member)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, sub)
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
