package push_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/internal/fcmtest"
	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/push"
	"github.com/switchboard/switchboard/ticket"
)

// TestStatsCountOutcomes: each outcome of a send, and each notification
// skipped for a live feed or held for quiet hours, counts exactly once.
func TestStatsCountOutcomes(t *testing.T) {
	cfg := fastRetries
	cfg.MaxAttempts = 2
	r := newRig(t, cfg)
	presence := ticket.NewPresence(r.store)
	r.svc = push.New(r.store, r.cfg, push.WithFCM(r.sender), push.WithTickets(r.tickets), push.WithPresence(presence))
	r.start()
	startRules(t, r.svc)
	ctx := context.Background()

	r.device("ok", "phone", token(1), "en")
	r.device("gone", "phone", token(2), "en")
	r.device("flaky", "phone", token(3), "en")
	r.device("quiet", "phone", token(4), "en")
	// A web device on a service with no Web Push sender: refused for good.
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sub := &api.WebPushSubscription{Endpoint: "https://push.example.test/sub1"}
	sub.Keys.P256DH = base64.RawURLEncoding.EncodeToString(key.PublicKey().Bytes())
	sub.Keys.Auth = base64.RawURLEncoding.EncodeToString(make([]byte, 16))
	if _, err := r.svc.Register(ctx, "web", "console", api.DeviceRegistration{Platform: api.PlatformWeb, Subscription: sub}); err != nil {
		t.Fatal(err)
	}
	// Quiet hours around now, whatever the time of day.
	now := time.Now().UTC()
	q := api.QuietHours{Enabled: true, Start: now.Add(-2 * time.Hour).Format("15:04"), End: now.Add(2 * time.Hour).Format("15:04"), TimeZone: "UTC"}
	if _, err := r.svc.SetSettings(ctx, "quiet", api.PushSettings{QuietHours: q}); err != nil {
		t.Fatal(err)
	}
	r.fcm.SetFault(func(m fcmtest.Message) *fcmtest.Fault {
		switch m.Token {
		case token(2):
			return &fcmtest.Fault{Code: fcmtest.Unregistered}
		case token(3):
			return &fcmtest.Fault{Code: fcmtest.Internal}
		}
		return nil
	})
	var ns []push.Notification
	for _, u := range []string{"ok", "gone", "flaky", "web", "quiet"} {
		ns = append(ns, push.Notification{Kind: push.KindPartShipped, Recipient: u, Params: map[string]string{"sku": "LAMP-1"}})
	}
	if err := r.svc.Enqueue(ctx, ns...); err != nil {
		t.Fatal(err)
	}
	// Ann has the feed open: an agent's reply on her ticket is skipped.
	if err := presence.Touch(ctx, "ann", "conn-1"); err != nil {
		t.Fatal(err)
	}
	tk, err := r.tickets.Open(ctx, ticket.Viewer{ID: "ann", Role: auth.RoleCustomer}, api.OpenTicketRequest{Subject: "tv"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(api.MessagePayload{Text: "on it"})
	if _, err := r.tickets.Append(ctx, api.Event{TicketID: tk.ID, Type: api.EventMessage, Actor: api.Actor{ID: "agent-1", Role: "agent"}, Payload: raw}); err != nil {
		t.Fatal(err)
	}

	want := push.Stats{Sent: 1, Unregistered: 1, Transient: 2, DeadLettered: 1, Refused: 1, QuietHeld: 1, Skipped: 1}
	poll.Until(t, 30*time.Second, 20*time.Millisecond, func() error {
		if got := r.svc.Stats(); got != want {
			return fmt.Errorf("stats %+v, want %+v", got, want)
		}
		return nil
	})
}
