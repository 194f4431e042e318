package push_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/push"
	"github.com/switchboard/switchboard/ticket"
)

// startRules runs the rules worker on r until the test ends.
func startRules(t *testing.T, svc *push.Service) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rules := svc.Rules("rules-node")
	done := make(chan error, 1)
	go func() { done <- rules.Run(ctx) }()
	select {
	case <-rules.Ready():
	case err := <-done:
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-done })
}

func TestRulesTurnTicketEventsIntoPushes(t *testing.T) {
	r := newRig(t, fastRetries)
	presence := ticket.NewPresence(r.store)
	r.svc = push.New(r.store, r.cfg, push.WithFCM(r.sender), push.WithTickets(r.tickets), push.WithPresence(presence))
	r.start()
	startRules(t, r.svc)
	ctx := context.Background()
	r.device("joe", "phone", token(1), "de-AT")
	r.device("tech-7", "work-phone", token(2), "en-GB")
	r.device("ann", "phone", token(3), "en")
	joe := ticket.Viewer{ID: "joe", Role: auth.RoleCustomer}
	tk, err := r.tickets.Open(ctx, joe, api.OpenTicketRequest{Subject: "projector broken"})
	if err != nil {
		t.Fatal(err)
	}
	agent := api.Actor{ID: "agent-1", Role: "agent"}
	post := func(typ api.EventType, actor api.Actor, p any) {
		t.Helper()
		raw, _ := json.Marshal(p)
		if _, err := r.tickets.Append(ctx, api.Event{TicketID: tk.ID, Type: typ, Actor: actor, Payload: raw}); err != nil {
			t.Fatal(err)
		}
	}
	sys := api.Actor{ID: "system", Role: "system"}
	post(api.EventMessage, api.Actor{ID: "joe", Role: "customer"}, api.MessagePayload{Text: "hello?"}) // no push to himself
	post(api.EventMessage, agent, api.MessagePayload{Text: "We found the fault."})
	post(api.EventCallMissed, agent, api.CallPayload{CallID: "call-9", Media: "video"})
	post(api.EventTechnicianDispatched, sys, api.TechnicianPayload{TechnicianID: "tech-7"})
	post(api.EventTechnicianArriving, sys, api.TechnicianPayload{TechnicianID: "tech-7", ETASeconds: 290})
	post(api.EventTechnicianArrived, sys, api.TechnicianPayload{TechnicianID: "tech-7"})
	post(api.EventPartOrdered, sys, api.PartOrderedPayload{SKU: "LAMP-1", Quantity: 1})
	post(api.EventPickupOffered, sys, api.PickupOfferedPayload{StoreID: "s1", StoreName: "Mitte", HoldID: "H-42"})
	post(api.EventFollowUpDue, sys, api.FollowUpPayload{FollowUpID: "f1", At: time.Now(), Action: "offer", Offer: "10% off a service plan"})
	post(api.EventCallRequested, agent, api.CallPayload{CallID: "call-10", Media: "video"})

	want := map[string]string{ // kind -> body on Joe's phone (German)
		"agent_replied":         "We found the fault.",
		"call_missed":           "Wir haben versucht, Sie zu erreichen. Tippen Sie, um zurückzurufen.",
		"technician_dispatched": "Ihr Techniker wurde losgeschickt.",
		"technician_arriving":   "Ihr Techniker ist in 5 Minuten da.",
		"technician_arrived":    "Ihr Techniker steht vor der Tür.",
		"part_shipped":          "Teil LAMP-1 wurde versandt.",
		"pickup_ready":          "Abholbereit bei Mitte. Reservierungsnummer: H-42.",
		"follow_up_offer":       "10% off a service plan",
		"call_incoming":         "", // data only
	}
	poll.Until(t, 30*time.Second, 20*time.Millisecond, func() error {
		if n := len(r.fcm.Requests()); n != len(want)+1 {
			return fmt.Errorf("%d sends", n)
		}
		return nil
	})
	for _, q := range r.fcm.Requests() {
		m := q.Message
		kind := m.Data["kind"]
		if m.Token == token(2) {
			if kind != "job_assigned" || m.Notification.Body != "You have been dispatched to ticket "+tk.ID+"." {
				t.Fatalf("technician got %s %+v", kind, m.Notification)
			}
			continue
		}
		body, ok := want[kind]
		if !ok || m.Token != token(1) {
			t.Fatalf("unexpected %s to %s", kind, m.Token)
		}
		if kind == "call_incoming" {
			if m.Notification != nil || m.Android.Priority != "high" || m.Data["call_id"] != "call-10" || m.Android.TTL != "30s" {
				t.Fatalf("ring is not a high-priority data message: %+v %+v", m, m.Android)
			}
			continue
		}
		if m.Notification == nil || m.Notification.Body != body {
			t.Fatalf("%s: %+v", kind, m.Notification)
		}
		if kind == "call_missed" && m.Data["action"] != "CALL_BACK" {
			t.Fatalf("missed call without call-back action: %v", m.Data)
		}
		if m.Data["link"] != "switchboard://tickets/"+tk.ID {
			t.Fatalf("deep link %q", m.Data["link"])
		}
	}
	// Each send is on the ticket as push_sent.
	poll.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		v, err := r.tickets.Timeline(ctx, ticket.Viewer{ID: "root", Role: auth.RoleAdmin}, tk.ID, "", 200)
		if err != nil {
			return err
		}
		n := 0
		for _, ev := range v.Events {
			if ev.Type == api.EventPushSent {
				n++
			}
		}
		if n != len(want)+1 {
			return fmt.Errorf("%d push_sent events", n)
		}
		return nil
	})

	// Live-vs-push: Ann has the feed open on some node; her ticket's
	// reply shows there and does not buzz her phone.
	if err := presence.Touch(ctx, "ann", "conn-1"); err != nil {
		t.Fatal(err)
	}
	ann := ticket.Viewer{ID: "ann", Role: auth.RoleCustomer}
	tk2, err := r.tickets.Open(ctx, ann, api.OpenTicketRequest{Subject: "tv"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(api.MessagePayload{Text: "on it"})
	if _, err := r.tickets.Append(ctx, api.Event{TicketID: tk2.ID, Type: api.EventMessage, Actor: agent, Payload: raw}); err != nil {
		t.Fatal(err)
	}
	// A marker for Joe after it: once it is pushed, the rules have
	// handled Ann's reply (they read the stream in order).
	before := len(r.fcm.Requests())
	post(api.EventPartOrdered, sys, api.PartOrderedPayload{SKU: "MARKER", Quantity: 1})
	poll.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		if len(r.fcm.Requests()) == before {
			return fmt.Errorf("marker not pushed")
		}
		return nil
	})
	// Then she closes it: the next reply is pushed.
	if err := presence.Leave(ctx, "ann", "conn-1"); err != nil {
		t.Fatal(err)
	}
	raw, _ = json.Marshal(api.MessagePayload{Text: "done"})
	if _, err := r.tickets.Append(ctx, api.Event{TicketID: tk2.ID, Type: api.EventMessage, Actor: agent, Payload: raw}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		if r.fcm.Delivered()[token(3)] == 0 {
			return fmt.Errorf("ann not pushed after leaving")
		}
		return nil
	})
	for _, q := range r.fcm.Requests() {
		if q.Message.Token == token(3) && q.Message.Notification.Body != "done" {
			t.Fatalf("ann was buzzed while live: %q", q.Message.Notification.Body)
		}
	}
}

// Quiet hours hold back everything but urgent messages, until they end.
func TestQuietHoursHoldAllButUrgent(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 3, 2, 23, 30, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	r := newRig(t, fastRetries)
	r.svc = push.New(r.store, r.cfg, push.WithFCM(r.sender), push.WithClock(clock))
	r.start()
	ctx := context.Background()
	r.device("joe", "phone", token(1), "en")
	if _, err := r.svc.SetSettings(ctx, "joe", api.PushSettings{QuietHours: api.QuietHours{Enabled: true, Start: "22:00", End: "07:00", TimeZone: "UTC"}}); err != nil {
		t.Fatal(err)
	}
	err := r.svc.Enqueue(ctx,
		push.Notification{ID: "pn_offer", Kind: push.KindFollowUpOffer, Recipient: "joe", Params: map[string]string{"offer": "x"}},
		push.Notification{ID: "pn_door", Kind: push.KindTechArrived, Recipient: "joe"})
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, 10*time.Millisecond, func() error {
		n, err := r.store.ZCard(ctx, "push:due")
		if err != nil || n != 1 || len(r.fcm.Requests()) != 1 {
			return fmt.Errorf("held %d, sent %d (%v)", n, len(r.fcm.Requests()), err)
		}
		return nil
	})
	if id := r.fcm.Requests()[0].Message.Data["notification_id"]; id != "pn_door" {
		t.Fatalf("sent during quiet hours: %s", id)
	}
	mu.Lock()
	now = now.Add(8 * time.Hour) // 07:30: quiet hours are over
	mu.Unlock()
	poll.Until(t, 10*time.Second, 10*time.Millisecond, func() error {
		if len(r.fcm.Requests()) != 2 {
			return fmt.Errorf("held one not sent after quiet hours")
		}
		return nil
	})
}
