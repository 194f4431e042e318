package ticket_test

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/state/embedded"
	"github.com/switchboard/switchboard/ticket"
)

// An open subscription makes its user online for any node reading the
// store; closing it (the last one) makes them offline.
func TestPresenceFollowsSubscriptions(t *testing.T) {
	st, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	p := ticket.NewPresence(st)
	hub := ticket.NewHub(ticket.New(st), ticket.HubConfig{Presence: p})
	online := func(want bool) {
		t.Helper()
		got, err := ticket.NewPresence(st).Online(ctx, "joe") // another node's view
		if err != nil || got != want {
			t.Fatalf("online %v (%v), want %v", got, err, want)
		}
	}
	online(false)
	v := ticket.Viewer{ID: "joe", Role: auth.RoleCustomer}
	a, err := hub.Subscribe(v, ticket.Filter{}, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := hub.Subscribe(v, ticket.Filter{}, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*ticket.Subscription{a, b} {
		if _, err := s.Next(ctx, time.Millisecond); err != nil { // idle: the first Next records presence
			t.Fatal(err)
		}
	}
	online(true)
	a.Close()
	online(true) // the tablet is still connected
	b.Close()
	online(false)
}
