package gateway_test

import (
	"testing"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/gateway"
)

// TestQueueScopedAgentCustomerTimeline: an agent who serves only the
// billing queue reads a customer's timeline (every channel, every ticket)
// and sees the events of the customer's billing tickets, never those of
// a ticket in a queue they do not serve, which GET /v1/tickets/{id}
// already hides from them (404). Unscoped agents still see all of it.
func TestQueueScopedAgentCustomerTimeline(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	alice := e.token(t, "alice", auth.RoleCustomer)
	billing := e.scopedToken(t, "bill", auth.RoleAgent, "queue:billing")
	lead := e.token(t, "lead", auth.RoleAgent)
	bt := e.open(t, alice, api.OpenTicketRequest{Subject: "double charge", Queue: "billing"})
	rt := e.open(t, alice, api.OpenTicketRequest{Subject: "broken hinge", Queue: "repairs", Message: "the lid falls off"})
	e.post(t, lead, rt.ID, api.EventNote, api.NotePayload{Text: "customer dropped it"})
	readProblem(t, e.do(t, "GET", "/v1/tickets/"+rt.ID, billing, nil), 404, api.CodeNotFound)

	perTicket := func(evs []api.Event) map[string]int {
		n := map[string]int{}
		for _, ev := range evs {
			n[ev.TicketID]++
		}
		return n
	}
	got := perTicket(e.customerTL(t, billing, "alice"))
	if got[rt.ID] != 0 {
		t.Fatalf("the billing agent reads %d events of the repairs ticket through the customer timeline", got[rt.ID])
	}
	if got[bt.ID] == 0 {
		t.Fatal("the billing agent does not see the billing ticket on the customer timeline")
	}
	all := perTicket(e.customerTL(t, lead, "alice"))
	if all[rt.ID] != 3 || all[bt.ID] != got[bt.ID] {
		t.Fatalf("the unscoped agent sees %v, the billing agent %v", all, got)
	}
}
