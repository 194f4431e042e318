package device

import (
	"context"
	"crypto/rand"
	"errors"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/ticket"
)

// Config tunes the service. Every zero value means the default in its
// comment.
type Config struct {
	// SealKey is the 32-byte key appliance secrets are sealed with
	// (LoadOrCreateSealKey). Required.
	SealKey []byte
	// Rules are the fault rules (LoadRules). Zero: no rules, faults are
	// recorded as diagnostics only.
	Rules *Rules
	// RelayTTL is the life of a relay token. Zero: 1h, short enough that a
	// released appliance's old phone stops relaying soon, long enough for
	// a phone to upload a day's offline buffer in one go.
	RelayTTL time.Duration
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock, for tests; nil is time.Now.
	Now func() time.Time
}

// Service is the appliance domain. It keeps no state of its own beyond
// caches of immutable records, so any number of nodes may run one over
// the same backend.
type Service struct {
	st      state.Store
	tickets *ticket.Service
	issuer  *auth.Issuer
	seal    *sealer
	rules   *Rules
	log     *slog.Logger
	now     func() time.Time
	ttl     time.Duration

	cache apCache
	// locks serialise ingest per appliance on this node (striped by ID),
	// so two batches of one appliance never pass the duplicate check at
	// once.
	locks [256]sync.Mutex
	// pub delivers commands over MQTT once a client runs (see MQTT).
	pub atomic.Pointer[publisher]
	// feed wakes relay sessions on this node when a command is queued.
	feed commandFeed
	// frames counts ingested frames by transport (stats.go).
	frames frameStats
}

// publisher sends a command payload to an appliance's command topic.
type publisher func(ctx context.Context, topic string, payload []byte) error

// New returns the appliance service.
func New(st state.Store, tickets *ticket.Service, issuer *auth.Issuer, cfg Config) (*Service, error) {
	sl, err := newSealer(cfg.SealKey)
	if err != nil {
		return nil, err
	}
	if tickets == nil || issuer == nil {
		return nil, errors.New("device: New needs the ticket service and the token issuer")
	}
	s := &Service{st: st, tickets: tickets, issuer: issuer, seal: sl, rules: cfg.Rules,
		log: cfg.Logger, now: cfg.Now, ttl: cfg.RelayTTL}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "device")
	if s.now == nil {
		s.now = time.Now
	}
	if s.ttl == 0 {
		s.ttl = time.Hour
	}
	if s.rules == nil {
		s.rules = &Rules{}
	}
	s.cache.m = map[string]*appliance{}
	return s, nil
}

func (s *Service) lockFor(id string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(id))
	return &s.locks[h.Sum32()%uint32(len(s.locks))]
}

// newID returns a random opaque ID with a prefix saying what it names.
func newID(prefix string) string { return prefix + strings.ToLower(rand.Text()[:20]) }

// apCache keeps opened appliance records (serial, model, secret), which
// never change once imported, so the hot path neither reads nor unseals
// them per frame. Owners do change and are always read from the store.
type apCache struct {
	mu sync.RWMutex
	m  map[string]*appliance
}

// maxCached bounds the cache: 100,000 appliances at about 200 bytes is
// 20 MB; past it the cache starts over rather than growing.
const maxCached = 100_000

func (c *apCache) get(id string) *appliance {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[id]
}

func (c *apCache) put(a *appliance) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCached {
		c.m = map[string]*appliance{}
	}
	c.m[a.ID] = a
}
