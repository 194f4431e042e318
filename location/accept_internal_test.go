package location

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/state/embedded"
	"github.com/switchboard/switchboard/ticket"
)

// TestAcceptFinishedAfterCrash: a node that wins an acceptance and dies
// before it takes effect (simulated by settling the offer alone) leaves
// the offer in the expiry index; ExpireDue finishes it once the offer's
// time is up: the ticket names the technician, the job is on their load,
// the dispatch is assigned, and "accepted" is written once. A retried
// Accept by the same technician then answers without writing again.
func TestAcceptFinishedAfterCrash(t *testing.T) {
	ctx := context.Background()
	st, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now().UTC()
	clock := func() time.Time { return now }
	tickets := ticket.New(st, ticket.WithClock(clock))
	svc := New(st, tickets, Config{}, WithClock(clock))
	skills, on := []string{"projector"}, true
	if _, err := svc.SetProfile(ctx, "tech-1", api.ProfileRequest{Skills: &skills, OnDuty: &on}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Report(ctx, "tech-1", []api.Fix{{Lat: 52.53, Lon: 13.405, Time: now}}); err != nil {
		t.Fatal(err)
	}
	tk, err := tickets.Open(ctx, ticket.System, api.OpenTicketRequest{CustomerID: "cust-1", Subject: "no picture"})
	if err != nil {
		t.Fatal(err)
	}
	agent := ticket.Viewer{ID: "agent-1", Role: auth.RoleAgent}
	d, err := svc.Dispatch(ctx, agent, tk.ID, api.DispatchRequest{Lat: 52.52, Lon: 13.405, Skills: []string{"projector"}})
	if err != nil {
		t.Fatal(err)
	}
	o, raw, err := svc.mine(ctx, "tech-1", d.OfferID)
	if err != nil {
		t.Fatal(err)
	}
	if won, err := svc.settle(ctx, o, raw, api.OfferAccepted); err != nil || !won {
		t.Fatalf("settle: %v %v", won, err)
	}
	// The node is gone. Before the offer's time is up nothing happens.
	if err := svc.ExpireDue(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := tickets.Get(ctx, ticket.System, tk.ID); got.Technician != "" {
		t.Fatalf("finished before the offer's time: %q", got.Technician)
	}
	now = now.Add(2 * time.Minute)
	for range 2 { // a second pass changes nothing
		if err := svc.ExpireDue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.Accept(ctx, "tech-1", d.OfferID); err != nil { // the app's retry
		t.Fatalf("retried accept: %v", err)
	}
	if got, _ := tickets.Get(ctx, ticket.System, tk.ID); got.Technician != "tech-1" {
		t.Fatalf("ticket technician %q", got.Technician)
	}
	if d, _ := svc.DispatchStatus(ctx, agent, tk.ID); d.State != api.DispatchAssigned {
		t.Fatalf("dispatch %+v", d)
	}
	if p, _ := svc.Profile(ctx, "tech-1"); p.Load != 1 {
		t.Fatalf("load %d", p.Load)
	}
	evs, err := tickets.Timeline(ctx, ticket.System, tk.ID, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	accepted, changed := 0, 0
	for _, e := range evs.Events {
		switch e.Type {
		case api.EventTechnicianDispatched:
			var p api.TechnicianPayload
			_ = json.Unmarshal(e.Payload, &p)
			if p.Stage == api.OfferAccepted {
				accepted++
			}
		case api.EventStatusChanged:
			changed++
		}
	}
	if accepted != 1 || changed != 1 {
		t.Fatalf("%d accepted and %d status_changed events, want one each", accepted, changed)
	}
	if left, _ := st.ZCard(ctx, ixOffers); left != 0 {
		t.Fatalf("%d offers left in the expiry index", left)
	}
}
