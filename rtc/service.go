package rtc

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/internal/loop"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/ticket"
)

// Keys and indexes on the state seam. Every node reads and writes the same
// ones, so presence and the queue hold across nodes.
func keyCall(id string) string    { return "rtc:call:" + id }
func keyAgent(id string) string   { return "rtc:agent:" + id }
func ixIdle(skill string) string  { return "rtc:idle:" + skill }
func ixQueue(skill string) string { return "rtc:queue:" + skill }
func chNode(node string) string   { return "rtc:node:" + node }

const (
	ixWaiting    = "rtc:waiting" // every queued call, by request time
	ixRinging    = "rtc:ringing" // every ringing call, by ring deadline
	keyRouteLock = "rtc:route-lock"
	chUsers      = "rtc:users" // messages for a user, wherever connected
	// anySkill is the idle index of agents without skill scopes: they
	// take calls of every skill, as agents without queue scopes see every
	// queue.
	anySkill = "*"
	// routeLockTTL bounds one routing pass; a node that dies holding the
	// lock blocks routing for at most this long.
	routeLockTTL = 5 * time.Second
	// callRetention keeps an ended call readable (GET /v1/calls/{id}) for
	// a week; its events stay in the ticket stream for good.
	callRetention = 7 * 24 * time.Hour
	// casRetries bounds compare-and-swap loops; contention on one call is
	// two parties and a router, so a handful always suffices.
	casRetries = 16
)

// User is who acts on a call, from a verified token.
type User struct {
	ID   string
	Role auth.Role
	// Skills are the agent's "skill:NAME" and "queue:NAME" scopes; none
	// means every skill.
	Skills []string
	// Queues are the "queue:NAME" scopes, for ticket visibility.
	Queues []string
	// Supervisor is the "supervisor" scope (or the admin role): may join
	// any call listen-only.
	Supervisor bool
}

// UserFrom builds a User from verified claims.
func UserFrom(cl *auth.Claims) User {
	u := User{ID: cl.Subject, Role: cl.Role, Supervisor: cl.Role == auth.RoleAdmin}
	for _, s := range cl.Scopes {
		switch {
		case s == "supervisor":
			u.Supervisor = true
		case strings.HasPrefix(s, "skill:") && len(s) > len("skill:"):
			u.Skills = append(u.Skills, strings.TrimPrefix(s, "skill:"))
		case strings.HasPrefix(s, "queue:") && len(s) > len("queue:"):
			q := strings.TrimPrefix(s, "queue:")
			u.Queues = append(u.Queues, q)
			u.Skills = append(u.Skills, q)
		}
	}
	return u
}

func (u User) viewer() ticket.Viewer { return ticket.Viewer{ID: u.ID, Role: u.Role, Queues: u.Queues} }

// Service is click-to-call: calls, presence, routing, signaling and the
// media relay of this node. Run drives its background work.
type Service struct {
	cfg     Config
	st      state.Store
	tickets *ticket.Service
	log     *slog.Logger
	now     func() time.Time
	kick    chan struct{}
	hub     *Hub
	relay   *Relay
}

// New builds the service. The relay's WebRTC engine is built here, so a
// bad media setting fails start-up.
func New(cfg Config, st state.Store, tickets *ticket.Service) (*Service, error) {
	if cfg.Node == "" {
		return nil, fmt.Errorf("%w: a node name is required", ErrInvalid)
	}
	cfg = cfg.withDefaults()
	s := &Service{cfg: cfg, st: st, tickets: tickets, log: cfg.Logger.With("component", "rtc"),
		now: time.Now, kick: make(chan struct{}, 1)}
	s.hub = newHub(s)
	r, err := newRelay(s, cfg.Media)
	if err != nil {
		return nil, err
	}
	s.relay = r
	return s, nil
}

// Node is this node's name.
func (s *Service) Node() string { return s.cfg.Node }

// Hub is the node's signaling hub.
func (s *Service) Hub() *Hub { return s.hub }

// Relay is the node's media relay.
func (s *Service) Relay() *Relay { return s.relay }

// Close releases the relay's media socket when Run will not run (start-up
// failed after New); Run releases it itself when it ends.
func (s *Service) Close() { s.relay.closeAll() }

// Run routes calls, times out rings, carries signaling between nodes and
// owns the relay's rooms, until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	defer s.relay.closeAll()
	sub, err := s.st.Subscribe(ctx, chNode(s.cfg.Node), chUsers)
	if err != nil {
		return fmt.Errorf("rtc: subscribe: %w", err)
	}
	defer sub.Close()
	defer s.hub.closeAll()
	// The node's chores run beside the loop and stop with it: liveness
	// and orphaned calls (failover.go), and recordings past retention.
	bctx, stop := context.WithCancel(ctx)
	var chores sync.WaitGroup
	chores.Go(func() { s.runNode(bctx) })
	chores.Go(func() {
		loop.Every(bctx, pruneEvery, s.PruneRecordings, func(err error) { s.log.Warn("pruning recordings failed", "err", err) })
	})
	defer func() { stop(); chores.Wait() }()
	tick := time.NewTicker(s.cfg.RoutePoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-sub.C():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("rtc: pub/sub subscription ended")
			}
			s.hub.onMessage(ctx, m)
		case <-s.kick:
			s.routeAndExpire(ctx)
		case <-tick.C:
			s.routeAndExpire(ctx)
		}
	}
}

func (s *Service) routeAndExpire(ctx context.Context) {
	if err := s.expireRings(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("ring timeouts", "err", err)
	}
	if err := s.route(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("routing", "err", err)
	}
}

// kickRoute asks Run for a routing pass now rather than at the next poll.
func (s *Service) kickRoute() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func newID(prefix string) string { return prefix + strings.ToLower(rand.Text()[:20]) }

// update applies fn to the JSON record at key with compare-and-swap,
// retrying on concurrent change. fn returning an error aborts.
func update[T any](ctx context.Context, st state.Store, key string, ttl time.Duration, fn func(*T) error) (T, error) {
	var zero T
	for range casRetries {
		old, err := st.Get(ctx, key)
		if err != nil {
			return zero, err
		}
		var v T
		if err := json.Unmarshal(old, &v); err != nil {
			return zero, fmt.Errorf("rtc: decode %s: %w", key, err)
		}
		if err := fn(&v); err != nil {
			return zero, err
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return zero, err
		}
		ok, err := st.CompareAndSwap(ctx, key, old, raw, ttl)
		if err != nil {
			return zero, err
		}
		if ok {
			return v, nil
		}
	}
	return zero, fmt.Errorf("%w: changed concurrently; retry", ErrConflict)
}

func ms(t time.Time) float64 { return float64(t.UnixMilli()) }

var timeZero time.Time
