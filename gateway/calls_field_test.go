package gateway_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/internal/poll"
	sdk "github.com/switchboard/switchboard/mobile-sdk"
	"github.com/switchboard/switchboard/mobile-sdk/call"
)

// TestCallPlacedByTechnician is field escalation ("see what I see"): the
// technician dispatched to a ticket calls an agent from the location app
// on that ticket; media flows both ways through the gateway, the events
// say the call came from the field, and a technician not on the ticket
// cannot place one.
func TestCallPlacedByTechnician(t *testing.T) {
	e := newCallEnv(t, nil, nil, "node-a", nil)
	ctx := context.Background()
	customer := e.client(t, "joe", auth.RoleCustomer)
	tk := openTicket(t, customer)
	agent := e.client(t, "ann", auth.RoleAgent)
	tech := "tech-7"
	if err := agent.Do(ctx, "PATCH", "/v1/tickets/"+tk.ID, api.UpdateTicketRequest{Technician: &tech}, nil); err != nil {
		t.Fatal(err)
	}
	agentSig := dial(t, agent)
	if err := agentSig.Send(api.Signal{Type: api.SigStatus, Status: api.AgentAvailable}); err != nil {
		t.Fatal(err)
	}
	waitSig(t, agentSig, api.SigStatus)

	var refused api.Call
	if err := e.client(t, "tech-8", auth.RoleTechnician).Do(ctx, "POST", "/v1/calls", api.PlaceCallRequest{TicketID: tk.ID, Media: api.MediaVideo}, &refused); sdk.StatusCode(err) != 404 {
		t.Fatalf("a technician not on the ticket placing a call: %v, want 404", err)
	}

	field := e.client(t, tech, auth.RoleTechnician)
	fieldSig := dial(t, field)
	tm, am := newTracks(t), newTracks(t)
	apiT, _ := call.DefaultAPI(true)
	tc, _, err := call.Place(ctx, field, fieldSig, api.PlaceCallRequest{TicketID: tk.ID, Media: api.MediaVideo}, "",
		call.Options{Audio: tm.audio, Video: tm.video, OnTrack: tm.onTrack, API: apiT})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)
	answerAndJoin(t, agentSig, tc.ID, am, nil, nil)
	poll.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		if tm.got.Load() < 10 || am.got.Load() < 10 {
			return fmt.Errorf("packets received: technician %d, agent %d", tm.got.Load(), am.got.Load())
		}
		return nil
	})
	if err := tc.HangUp(); err != nil {
		t.Fatal(err)
	}
	var view api.TicketView
	poll.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		if err := agent.Do(ctx, "GET", "/v1/tickets/"+tk.ID, nil, &view); err != nil {
			return err
		}
		for _, ev := range view.Events {
			if ev.Type == api.EventCallEnded {
				return nil
			}
		}
		return fmt.Errorf("no call_ended yet")
	})
	for _, ev := range view.Events {
		if ev.Type == api.EventCallRequested && (ev.Actor.ID != tech || ev.Actor.Role != string(auth.RoleTechnician) || ev.Channel != api.ChannelField) {
			t.Fatalf("call_requested %+v, want the technician from the field", ev)
		}
	}
}
