package ticket_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/ticket"
)

// TestRefusedFollowUpLeavesNothingDue: a follow-up whose note and offer
// are each within MaxText but whose event would be over MaxPayload once
// JSON-encoded ('<' is six bytes there, '"' two) is refused by
// CheckFollowUp and ScheduleFollowUp alike, before anything is stored:
// nothing fires later, and the follow-ups scheduled after it still do.
func TestRefusedFollowUpLeavesNothingDue(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		svc := ticket.New(b.st)
		tk, err := svc.Open(ctx, alice, api.OpenTicketRequest{Subject: "oven"})
		if err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(time.Hour)
		for name, req := range map[string]api.FollowUpRequest{
			"escaped note": {At: at, Action: api.FollowUpReminder, Note: strings.Repeat("<", ticket.MaxText)},
			"quoted offer": {At: at, Action: api.FollowUpOffer, Offer: strings.Repeat(`"`, ticket.MaxText)},
			"note and offer": {At: at, Action: api.FollowUpOffer, Note: strings.Repeat("n", ticket.MaxText),
				Offer: strings.Repeat("o", ticket.MaxText)},
		} {
			if err := svc.CheckFollowUp(req); !errors.Is(err, ticket.ErrInvalid) {
				t.Fatalf("%s: CheckFollowUp = %v, want ErrInvalid", name, err)
			}
			if _, err := svc.ScheduleFollowUp(ctx, agent, tk.ID, req); !errors.Is(err, ticket.ErrInvalid) {
				t.Fatalf("%s: ScheduleFollowUp = %v, want ErrInvalid", name, err)
			}
		}
		good, err := svc.ScheduleFollowUp(ctx, agent, tk.ID, api.FollowUpRequest{At: at.Add(time.Minute), Action: api.FollowUpReminder, Note: "call back"})
		if err != nil {
			t.Fatal(err)
		}
		later := ticket.New(b.st, ticket.WithClock(func() time.Time { return time.Now().Add(2 * time.Hour) }))
		if err := later.FireDue(ctx, "later"); err != nil {
			t.Fatalf("FireDue after refused follow-ups: %v", err)
		}
		var scheduled, due []string
		for _, ev := range readAll(t, svc, ticket.System, tk.ID, ticket.MaxPage) {
			var p api.FollowUpPayload
			if ev.Type == api.EventFollowUpScheduled || ev.Type == api.EventFollowUpDue {
				if err := json.Unmarshal(ev.Payload, &p); err != nil {
					t.Fatal(err)
				}
			}
			switch ev.Type {
			case api.EventFollowUpScheduled:
				scheduled = append(scheduled, p.FollowUpID)
			case api.EventFollowUpDue:
				due = append(due, p.FollowUpID)
			}
		}
		if len(scheduled) != 1 || len(due) != 1 || scheduled[0] != good.ID || due[0] != good.ID {
			t.Fatalf("scheduled %v, due %v; want only %s", scheduled, due, good.ID)
		}
	})
}
