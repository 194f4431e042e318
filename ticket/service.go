package ticket

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/state"
)

// StreamEvents is the one stream every event is appended to. In Redis mode
// it is the Redis Stream "<prefix>x:events", payload in field "d", so a CRM
// connector can read it with XREADGROUP.
const StreamEvents = "events"

// Keys of the projections (see doc.go).
func keyTicket(id string) string      { return "tk:" + id }
func ixTimeline(ticket string) string { return "tl:t:" + ticket }
func ixCustomerTL(cust string) string { return "tl:c:" + cust }
func ixAll() string                   { return "ix:all" }
func ixCustomer(cust string) string   { return "ix:cust:" + cust }
func ixQueue(q string) string         { return "ix:queue:" + q }
func ixTechnician(tech string) string { return "ix:tech:" + tech }

// Service is the ticket stream on the state seam. It is safe for
// concurrent use and holds no state of its own beyond a cache checked
// against the store: any number of gateway nodes may run one over the
// same backend.
type Service struct {
	st            state.Store
	log           *slog.Logger
	now           func() time.Time
	ingestSecrets map[string]string
	appended      appendCounters
	decoded       decodedTickets
}

// Option configures a Service.
type Option func(*Service)

// WithLogger sets the logger. The default discards.
func WithLogger(l *slog.Logger) Option {
	return func(s *Service) { s.log = l.With("component", "ticket") }
}

// WithClock sets the clock, for tests.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// New returns the ticket service over st.
func New(st state.Store, opts ...Option) *Service {
	s := &Service{st: st, log: slog.New(slog.DiscardHandler), now: time.Now, appended: newAppendCounters()}
	for _, o := range opts {
		o(s)
	}
	return s
}

// newID returns a random opaque ID with a prefix saying what it names.
func newID(prefix string) string {
	return prefix + strings.ToLower(rand.Text()[:20])
}

// member is an event ID as a timeline member (state.IDMember) and its
// score, the millisecond: the form XAddIndexed writes.
func member(id string) (string, float64, error) {
	p, err := state.ParseID(id)
	if err != nil {
		return "", 0, err
	}
	return state.IDMember(p), float64(p.Ms), nil
}

// loadTicket reads a ticket record.
func (s *Service) loadTicket(ctx context.Context, id string) (*api.Ticket, []byte, error) {
	if id == "" || len(id) > maxShort {
		return nil, nil, ErrNotFound
	}
	raw, err := s.st.Get(ctx, keyTicket(id))
	if errors.Is(err, state.ErrNotFound) {
		return nil, nil, ErrNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	if t, ok := s.decoded.get(id, raw); ok {
		return t, raw, nil
	}
	var t api.Ticket
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, nil, fmt.Errorf("ticket %s: corrupt record: %w", id, err)
	}
	s.decoded.put(id, raw, t)
	return &t, raw, nil
}

// sleepCtx waits d or until ctx ends, whichever is first.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
