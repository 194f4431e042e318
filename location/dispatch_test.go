package location_test

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/location"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/ticket"
)

func stages(t testing.TB, f *fixture, ticketID string) []string {
	t.Helper()
	var out []string
	for _, e := range f.events(t, ticketID, api.EventTechnicianDispatched) {
		var p api.TechnicianPayload
		if err := json.Unmarshal(e.Payload, &p); err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Stage+":"+p.TechnicianID)
	}
	return out
}

// TestDispatchFlow: best candidate first; decline and timeout move on;
// accept sets the ticket's technician; arriving and arrived fire once;
// the customer sees the technician only while en route.
func TestDispatchFlow(t *testing.T) {
	backends(t, func(t *testing.T, st state.Store) {
		f := newFixture(t, st, location.Config{}, nil)
		job := api.DispatchRequest{Lat: 52.5200, Lon: 13.4050, Skills: []string{"projector"}}
		f.onDuty(t, "t-near", 52.5300, 13.4050, "projector") // ~1.1 km
		f.onDuty(t, "t-mid", 52.5500, 13.4050, "projector")  // ~3.3 km
		f.onDuty(t, "t-far", 52.6200, 13.4050, "projector")  // ~11 km
		f.onDuty(t, "t-wrong", 52.5201, 13.4050, "washer")   // closest, wrong skill
		tk := f.openTicket(t, "cust-1")
		customer := ticket.Viewer{ID: "cust-1", Role: auth.RoleCustomer}

		d, err := f.svc.Dispatch(ctx, agent, tk.ID, job)
		if err != nil {
			t.Fatal(err)
		}
		if d.State != api.DispatchOffering || d.TechnicianID != "t-near" || d.ExpiresAt == nil {
			t.Fatalf("first offer %+v", d)
		}
		if _, err := f.svc.Dispatch(ctx, agent, tk.ID, job); !errors.Is(err, location.ErrConflict) {
			t.Fatalf("second dispatch while offering: %v", err)
		}
		if _, err := f.svc.Accept(ctx, "t-mid", d.OfferID); !errors.Is(err, location.ErrNotFound) {
			t.Fatalf("someone else's offer: %v", err)
		}
		if _, err := f.svc.Decline(ctx, "t-near", d.OfferID); err != nil {
			t.Fatal(err)
		}
		d, _ = f.svc.DispatchStatus(ctx, agent, tk.ID)
		if d.TechnicianID != "t-mid" {
			t.Fatalf("after decline: %+v", d)
		}
		// t-mid lets the offer lapse.
		f.clock.Add(61 * time.Second)
		if err := f.svc.ExpireDue(ctx); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.ExpireDue(ctx); err != nil { // a second pass changes nothing
			t.Fatal(err)
		}
		d, _ = f.svc.DispatchStatus(ctx, agent, tk.ID)
		if d.TechnicianID != "t-far" || d.Tried != 3 {
			t.Fatalf("after expiry: %+v", d)
		}
		if _, err := f.svc.TechnicianFor(ctx, customer, tk.ID); !errors.Is(err, location.ErrNotFound) {
			t.Fatalf("position visible before acceptance: %v", err)
		}
		// t-far reports again (the clock moved), then accepts.
		if _, err := f.svc.Report(ctx, "t-far", []api.Fix{f.fixAt(52.6200, 13.4050, 0)}); err != nil {
			t.Fatal(err)
		}
		cur, err := f.svc.CurrentOffer(ctx, "t-far")
		if err != nil || cur.ID != d.OfferID {
			t.Fatalf("current offer %+v %v", cur, err)
		}
		if _, err := f.svc.Accept(ctx, "t-far", d.OfferID); err != nil {
			t.Fatal(err)
		}
		got, _ := f.tickets.Get(ctx, ticket.System, tk.ID)
		if got.Technician != "t-far" {
			t.Fatalf("ticket technician %q", got.Technician)
		}
		want := []string{"offered:t-near", "declined:t-near", "offered:t-mid", "expired:t-mid", "offered:t-far", "accepted:t-far"}
		if s := stages(t, f, tk.ID); len(s) != len(want) || s[len(s)-1] != want[len(want)-1] {
			t.Fatalf("stages %v, want %v", s, want)
		} else {
			for i := range want {
				if s[i] != want[i] {
					t.Fatalf("stages %v, want %v", s, want)
				}
			}
		}
		// Privacy: only the ticket's customer, while en route.
		pos, err := f.svc.TechnicianFor(ctx, customer, tk.ID)
		if err != nil || pos.TechnicianID != "t-far" || pos.ETASeconds <= 0 {
			t.Fatalf("en route view %+v %v", pos, err)
		}
		if _, err := f.svc.TechnicianFor(ctx, ticket.Viewer{ID: "cust-2", Role: auth.RoleCustomer}, tk.ID); !errors.Is(err, ticket.ErrNotFound) {
			t.Fatalf("another customer: %v", err)
		}
		if _, err := f.svc.TechnicianFor(ctx, agent, tk.ID); !errors.Is(err, location.ErrForbidden) {
			t.Fatalf("an agent: %v", err)
		}
		// Driving in: 3 km away is under 10 minutes at 30 km/h.
		for i, lat := range []float64{52.5900, 52.5480, 52.5470, 52.5205, 52.5204} {
			f.clock.Add(90 * time.Second)
			if _, err := f.svc.Report(ctx, "t-far", []api.Fix{f.fixAt(lat, 13.4050, 0)}); err != nil {
				t.Fatalf("fix %d: %v", i, err)
			}
		}
		if n := len(f.events(t, tk.ID, api.EventTechnicianArriving)); n != 1 {
			t.Fatalf("%d technician_arriving events, want 1", n)
		}
		if n := len(f.events(t, tk.ID, api.EventTechnicianArrived)); n != 1 {
			t.Fatalf("%d technician_arrived events, want 1", n)
		}
		if _, err := f.svc.TechnicianFor(ctx, customer, tk.ID); !errors.Is(err, location.ErrNotFound) {
			t.Fatalf("position visible after arrival: %v", err)
		}
		p, _ := f.svc.Profile(ctx, "t-far")
		if p.Load != 1 {
			t.Fatalf("load %d", p.Load)
		}
		if err := f.svc.Complete(ctx, "t-far", tk.ID); err != nil {
			t.Fatal(err)
		}
		if p, _ = f.svc.Profile(ctx, "t-far"); p.Load != 0 {
			t.Fatalf("load after completion %d", p.Load)
		}
	})
}

// TestDispatchNobody: no candidate writes nothing and says so.
func TestDispatchNobody(t *testing.T) {
	f := newFixture(t, embeddedStore(t), location.Config{}, nil)
	tk := f.openTicket(t, "cust-1")
	_, err := f.svc.Dispatch(ctx, agent, tk.ID, api.DispatchRequest{Lat: 52.5, Lon: 13.4})
	if !errors.Is(err, location.ErrNoTechnician) {
		t.Fatalf("err %v", err)
	}
	if _, err := f.svc.DispatchStatus(ctx, agent, tk.ID); !errors.Is(err, location.ErrNotFound) {
		t.Fatalf("a record was left behind: %v", err)
	}
	if _, err := f.svc.Dispatch(ctx, ticket.Viewer{ID: "cust-2", Role: auth.RoleCustomer}, tk.ID, api.DispatchRequest{Lat: 52.5, Lon: 13.4}); !errors.Is(err, ticket.ErrNotFound) {
		t.Fatalf("another customer's ticket: %v", err)
	}
}

// TestDispatchRaceTwoNodes: two services on one real redis-server
// dispatch many tickets at once with a few technicians; no technician is
// ever offered two jobs at once, and each offer expires exactly once
// though both nodes run the expiry.
func TestDispatchRaceTwoNodes(t *testing.T) {
	srv := redistest.Start(t)
	c := newClock()
	a := newFixture(t, redisStore(t, srv.URL(), "race:"), location.Config{}, c)
	b := newFixture(t, redisStore(t, srv.URL(), "race:"), location.Config{}, c)
	techs := []string{"t1", "t2", "t3"}
	for i, id := range techs {
		a.onDuty(t, id, 52.52+float64(i)*0.001, 13.40, "tv")
	}
	const tickets = 12
	var ids []string
	for i := 0; i < tickets; i++ {
		ids = append(ids, a.openTicket(t, "cust").ID)
	}
	var wg sync.WaitGroup
	results := make([]api.Dispatch, tickets)
	errs := make([]error, tickets)
	for i, id := range ids {
		node := a
		if i%2 == 1 {
			node = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = node.svc.Dispatch(ctx, agent, id, api.DispatchRequest{Lat: 52.52, Lon: 13.40, Skills: []string{"tv"}})
		}()
	}
	wg.Wait()
	booked := map[string]string{}
	offered := 0
	for i := range ids {
		if errs[i] != nil {
			if !errors.Is(errs[i], location.ErrNoTechnician) {
				t.Fatalf("dispatch %d: %v", i, errs[i])
			}
			continue
		}
		offered++
		tech := results[i].TechnicianID
		if other, dup := booked[tech]; dup {
			t.Fatalf("%s offered both %s and %s", tech, other, ids[i])
		}
		booked[tech] = ids[i]
	}
	if offered != len(techs) {
		t.Fatalf("%d offers for %d technicians", offered, len(techs))
	}
	// Both nodes expire at once: each offer lapses exactly once.
	c.Add(61 * time.Second)
	wg.Add(2)
	go func() { defer wg.Done(); _ = a.svc.ExpireDue(ctx) }()
	go func() { defer wg.Done(); _ = b.svc.ExpireDue(ctx) }()
	wg.Wait()
	for tech, id := range booked {
		n := 0
		for _, s := range stages(t, a, id) {
			if s == "expired:"+tech {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("ticket %s: %d expired events for %s, want 1: %v", id, n, tech, stages(t, a, id))
		}
	}
}
