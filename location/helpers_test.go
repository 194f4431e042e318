package location_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/location"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/embedded"
	"github.com/switchboard/switchboard/state/redis"
	"github.com/switchboard/switchboard/ticket"
)

// clock is a settable clock shared by a test's services.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC()} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is a location service with its ticket service on one store.
type fixture struct {
	st      state.Store
	tickets *ticket.Service
	svc     *location.Service
	clock   *clock
}

func embeddedStore(t testing.TB) state.Store {
	t.Helper()
	st, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func redisStore(t testing.TB, url, prefix string) state.Store {
	t.Helper()
	st, err := redis.New(context.Background(), redis.Config{URL: url, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// backends runs f on the embedded store and on a real redis-server.
func backends(t *testing.T, f func(t *testing.T, st state.Store)) {
	t.Run("embedded", func(t *testing.T) { f(t, embeddedStore(t)) })
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		f(t, redisStore(t, srv.URL(), "t:"))
	})
}

func newFixture(t testing.TB, st state.Store, cfg location.Config, c *clock) *fixture {
	t.Helper()
	if c == nil {
		c = newClock()
	}
	tk := ticket.New(st, ticket.WithClock(c.Now))
	return &fixture{st: st, tickets: tk, clock: c, svc: location.New(st, tk, cfg, location.WithClock(c.Now))}
}

var ctx = context.Background()

// fixAt is a fix at lat/lon taken d after the clock's now.
func (f *fixture) fixAt(lat, lon float64, d time.Duration) api.Fix {
	return api.Fix{Lat: lat, Lon: lon, AccuracyM: 10, Time: f.clock.Now().Add(d)}
}

// onDuty makes id an on-duty technician with skills at lat/lon.
func (f *fixture) onDuty(t testing.TB, id string, lat, lon float64, skills ...string) {
	t.Helper()
	on := true
	if _, err := f.svc.SetProfile(ctx, id, api.ProfileRequest{Skills: &skills, OnDuty: &on}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Report(ctx, id, []api.Fix{f.fixAt(lat, lon, 0)}); err != nil {
		t.Fatal(err)
	}
}

// openTicket opens a ticket for customer.
func (f *fixture) openTicket(t testing.TB, customer string) api.Ticket {
	t.Helper()
	tk, err := f.tickets.Open(ctx, ticket.Viewer{ID: customer, Role: auth.RoleCustomer}, api.OpenTicketRequest{Subject: "projector broken"})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

var agent = ticket.Viewer{ID: "agent-1", Role: auth.RoleAgent}

// events returns the ticket's events of type typ.
func (f *fixture) events(t testing.TB, ticketID string, typ api.EventType) []api.Event {
	t.Helper()
	view, err := f.tickets.Timeline(ctx, ticket.System, ticketID, "", 200)
	if err != nil {
		t.Fatal(err)
	}
	var out []api.Event
	for _, e := range view.Events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}
