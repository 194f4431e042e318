package sdk_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/gateway"
	"github.com/switchboard/switchboard/internal/poll"
	sdk "github.com/switchboard/switchboard/mobile-sdk"
	"github.com/switchboard/switchboard/rtc"
)

// withCalls adds click-to-call to a gateway started by startGateway;
// routing looks for a free agent every 20 ms, so a test waits little.
func withCalls(t *testing.T) func(*gateway.Deps) {
	return func(d *gateway.Deps) {
		calls, err := rtc.New(rtc.Config{Node: "node-a", Logger: slog.New(slog.DiscardHandler), RoutePoll: 20 * time.Millisecond,
			Media: rtc.MediaConfig{IncludeLoopback: true}}, d.Store, d.Tickets)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = calls.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done }) // after the gateway's shutdown
		d.Calls = calls
	}
}

// placeCall opens a ticket for c and places an audio call on it.
func placeCall(t *testing.T, c *sdk.Client) (ticketID string, call api.Call) {
	t.Helper()
	tk, err := c.OpenTicket(t.Context(), api.OpenTicketRequest{Subject: "projector"}, "")
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.PlaceCall(t.Context(), api.PlaceCallRequest{TicketID: tk.ID, Media: api.MediaAudio}, "")
	if err != nil {
		t.Fatal(err)
	}
	return tk.ID, p.Call
}

// followUps returns the follow-ups scheduled on a ticket, from its
// timeline as the customer sees it.
func followUps(t *testing.T, c *sdk.Client, ticketID string) []api.FollowUpPayload {
	t.Helper()
	v, err := c.Ticket(t.Context(), ticketID, "")
	if err != nil {
		t.Fatal(err)
	}
	var out []api.FollowUpPayload
	for _, ev := range v.Events {
		if ev.Type == api.EventFollowUpScheduled {
			var p api.FollowUpPayload
			if err := json.Unmarshal(ev.Payload, &p); err != nil {
				t.Fatal(err)
			}
			out = append(out, p)
		}
	}
	return out
}

// TestRequestCallBack: a customer waiting in the queue asks to be called
// back instead; the call leaves the queue as missed (reason
// call_back_requested) and a call_back follow-up is on the ticket, at the
// time asked for or now. Only the caller may do it, and only once.
func TestRequestCallBack(t *testing.T) {
	s := startGateway(t, auth.Config{}, withCalls(t))
	ctx := t.Context()
	joe := s.client(t, "joe", auth.RoleCustomer, nil)
	tk, call := placeCall(t, joe)
	if call.State != api.CallQueued || call.Position != 1 {
		t.Fatalf("placed %+v, want queued first", call)
	}

	// Nobody else can turn joe's call into a call-back: not another
	// customer, not an agent.
	for _, other := range []*sdk.Client{s.client(t, "mallory", auth.RoleCustomer, nil), s.client(t, "ann", auth.RoleAgent, nil)} {
		if err := other.RequestCallBack(ctx, call.ID, api.CallBackRequest{}); sdk.StatusCode(err) != 404 || sdk.Code(err) != api.CodeNotFound {
			t.Fatalf("call-back on someone else's call: %v", err)
		}
	}
	if c, err := joe.Call(ctx, call.ID); err != nil || c.State != api.CallQueued {
		t.Fatalf("after refused call-backs: %+v, %v; want still queued", c, err)
	}

	at := time.Now().Add(3 * time.Hour).Truncate(time.Second).UTC()
	if err := joe.RequestCallBack(ctx, call.ID, api.CallBackRequest{At: at, Note: "after 6 pm please"}); err != nil {
		t.Fatal(err)
	}
	c, err := joe.Call(ctx, call.ID)
	if err != nil || c.State != api.CallMissed || c.EndReason != api.MissCallBack || c.EndedAt.IsZero() || c.Position != 0 {
		t.Fatalf("call after call-back: %+v, %v", c, err)
	}
	fus := followUps(t, joe, tk)
	if len(fus) != 1 || fus[0].Action != api.FollowUpCallBack || !fus[0].At.Equal(at) || fus[0].Note != "after 6 pm please" {
		t.Fatalf("follow-ups %+v, want one call_back at %v", fus, at)
	}
	// The wait has ended: a second call-back or a hang-up finds it over.
	if err := joe.RequestCallBack(ctx, call.ID, api.CallBackRequest{}); sdk.StatusCode(err) != 409 || sdk.Code(err) != api.CodeConflict {
		t.Fatalf("second call-back: %v", err)
	}
	if _, err := joe.EndCall(ctx, call.ID); sdk.StatusCode(err) != 409 {
		t.Fatalf("hang up after call-back: %v", err)
	}
	if len(followUps(t, joe, tk)) != 1 {
		t.Fatal("a refused call-back scheduled a follow-up")
	}

	// It left the queue: the next call is first in line. Without a time,
	// the call-back is due now, with a note naming the call.
	tk2, next := placeCall(t, joe)
	if next.Position != 1 {
		t.Fatalf("next call at position %d: the called-back call still queues", next.Position)
	}
	before := time.Now()
	if err := joe.RequestCallBack(ctx, next.ID, api.CallBackRequest{}); err != nil {
		t.Fatal(err)
	}
	fus = followUps(t, joe, tk2)
	if len(fus) != 1 || fus[0].At.Before(before.Add(-time.Second)) || fus[0].At.After(time.Now()) ||
		fus[0].Note != "call back: the customer asked while waiting for call "+next.ID {
		t.Fatalf("follow-ups %+v, want one due now", fus)
	}
	if err := joe.RequestCallBack(ctx, "call_nope", api.CallBackRequest{}); sdk.StatusCode(err) != 404 {
		t.Fatalf("call-back on a missing call: %v", err)
	}
}

// TestSetAgentStatus: an agent's status decides whether routing rings
// them; the answer is the agent with that status. Bad statuses are a
// validation error; customers and technicians have no status to set.
func TestSetAgentStatus(t *testing.T) {
	s := startGateway(t, auth.Config{}, withCalls(t))
	ctx := t.Context()
	ann := s.client(t, "ann", auth.RoleAgent, nil)
	a, err := ann.SetAgentStatus(ctx, api.AgentAway)
	if err != nil || a.ID != "ann" || a.Status != api.AgentAway || !a.IdleSince.IsZero() || a.Call != "" {
		t.Fatalf("away: %+v, %v", a, err)
	}
	joe := s.client(t, "joe", auth.RoleCustomer, nil)
	_, call := placeCall(t, joe)

	a, err = ann.SetAgentStatus(ctx, api.AgentAvailable)
	if err != nil || a.ID != "ann" || a.Status != api.AgentAvailable || a.IdleSince.IsZero() {
		t.Fatalf("available: %+v, %v", a, err)
	}
	// Available, ann is rung for the waiting call.
	poll.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		c, err := joe.Call(ctx, call.ID)
		if err != nil {
			return err
		}
		if c.State != api.CallRinging || c.Agent != "ann" {
			return fmt.Errorf("call %s %s (agent %q), want ringing ann", c.ID, c.State, c.Agent)
		}
		return nil
	})
	// Going busy while rung declines: the call waits again, ann is free
	// of it.
	a, err = ann.SetAgentStatus(ctx, api.AgentBusy)
	if err != nil || a.Status != api.AgentBusy {
		t.Fatalf("busy: %+v, %v", a, err)
	}
	if c, err := joe.Call(ctx, call.ID); err != nil || c.State != api.CallQueued || c.Agent != "" {
		t.Fatalf("call after ann went busy: %+v, %v", c, err)
	}

	for _, bad := range []api.AgentStatus{"", "lunch", "Available"} {
		if _, err := ann.SetAgentStatus(ctx, bad); sdk.StatusCode(err) != 422 || sdk.Code(err) != api.CodeValidation {
			t.Fatalf("status %q: %v", bad, err)
		}
	}
	for _, role := range []auth.Role{auth.RoleCustomer, auth.RoleTechnician} {
		c := s.client(t, "someone-"+string(role), role, nil)
		if _, err := c.SetAgentStatus(ctx, api.AgentAvailable); sdk.StatusCode(err) != 403 || sdk.Code(err) != api.CodeForbidden {
			t.Fatalf("%s sets an agent status: %v", role, err)
		}
	}
	// The refusals changed nothing: the call still waits for an agent.
	if c, err := joe.Call(ctx, call.ID); err != nil || c.State != api.CallQueued {
		t.Fatalf("call after refused status changes: %+v, %v", c, err)
	}
}

// TestRefusedCallBackKeepsWaiting: a call-back the ticket cannot take (a
// time past or more than a year ahead, a note too long) is refused, and
// the call keeps its place in the queue.
func TestRefusedCallBackKeepsWaiting(t *testing.T) {
	s := startGateway(t, auth.Config{}, withCalls(t))
	joe := s.client(t, "joe", auth.RoleCustomer, nil)
	tk, call := placeCall(t, joe)
	for name, req := range map[string]api.CallBackRequest{
		"past":      {At: time.Now().Add(-2 * time.Hour)},
		"two years": {At: time.Now().AddDate(2, 0, 0)},
		"long note": {Note: strings.Repeat("x", 9<<10)},
	} {
		if err := joe.RequestCallBack(t.Context(), call.ID, req); sdk.StatusCode(err) != 422 || sdk.Code(err) != api.CodeValidation {
			t.Fatalf("%s: %v", name, err)
		}
		if c, err := joe.Call(t.Context(), call.ID); err != nil || c.State != api.CallQueued || c.Position != 1 {
			t.Fatalf("%s: the refused call-back ended the wait: %+v, %v", name, c, err)
		}
	}
	if fus := followUps(t, joe, tk); len(fus) != 0 {
		t.Fatalf("follow-ups %+v after refused call-backs", fus)
	}
}
