package device

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/ticket"
)

var errNotFoundState = state.ErrNotFound

func keyOpenTicket(id string) string  { return "dev:ticket:" + id }
func keyFault(id, code string) string { return "dev:fault:" + id + ":" + code }
func (s *Service) sys() ticket.Viewer { return ticket.System }
func systemActor() api.Actor          { return api.Actor{ID: "rules", Role: string(ticket.RoleSystem)} }

// faultMarkerTTL: a fault acted on is not acted on again while its ticket
// stays open; after a month the marker goes, and a fault that still
// repeats is looked at afresh.
const faultMarkerTTL = 30 * 24 * time.Hour

// openTicket returns the appliance's open ticket, or "" when it has none
// (never had one, or it was resolved or closed).
func (s *Service) openTicket(ctx context.Context, id string) (string, error) {
	raw, err := s.st.Get(ctx, keyOpenTicket(id))
	if errors.Is(err, state.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	t, err := s.tickets.Get(ctx, s.sys(), string(raw))
	if errors.Is(err, ticket.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if t.Status != api.StatusOpen && t.Status != api.StatusPending {
		return "", nil
	}
	return t.ID, nil
}

// ticketFor returns the ticket a batch's diagnostics attach to: the open
// one, or a new one when a frame carries a fault whose rule opens one, so
// the frame that reported the fault is on the ticket about it. "" means
// the customer's timeline.
func (s *Service) ticketFor(ctx context.Context, a *appliance, o *owner, fs []api.Frame) (string, error) {
	tk, err := s.openTicket(ctx, a.ID)
	if err != nil || tk != "" {
		return tk, err
	}
	for _, f := range fs {
		for _, code := range f.FaultCodes {
			if r := s.rules.match(a.Model, code); r != nil && r.Action != ActionNotify {
				return s.ensureTicket(ctx, a, o, r, code)
			}
		}
	}
	return "", nil
}

// ensureTicket opens a ticket for the appliance's fault unless one is
// open. Two nodes racing may both open one; the swap decides which the
// appliance keeps, and the loser's stays as an ordinary ticket.
func (s *Service) ensureTicket(ctx context.Context, a *appliance, o *owner, r *Rule, code string) (string, error) {
	if tk, err := s.openTicket(ctx, a.ID); err != nil || tk != "" {
		return tk, err
	}
	old, err := s.st.Get(ctx, keyOpenTicket(a.ID))
	if err != nil && !errors.Is(err, state.ErrNotFound) {
		return "", err
	}
	subject := fmt.Sprintf("%s reported fault %s", a.Model, code)
	if r.Description != "" {
		subject += ": " + r.Description
	}
	t, err := s.tickets.Open(ctx, s.sys(), api.OpenTicketRequest{
		CustomerID: o.CustomerID, Subject: truncate(subject, 512), Channel: api.ChannelAppliance,
		Priority: r.Priority, Queue: r.Queue, Product: a.Model, ApplianceID: a.ID,
	})
	if err != nil {
		return "", err
	}
	ok, err := s.st.CompareAndSwap(ctx, keyOpenTicket(a.ID), old, []byte(t.ID), 0)
	if err != nil {
		return "", err
	}
	if !ok {
		return s.openTicket(ctx, a.ID)
	}
	return t.ID, nil
}

// actOn applies the rule for one fault code of a recorded frame. A fault
// already acted on for the open ticket is a repeat: its frame is on the
// ticket, and nothing more is ordered, dispatched or told.
func (s *Service) actOn(ctx context.Context, a *appliance, o *owner, code string) error {
	r := s.rules.match(a.Model, code)
	if r == nil {
		return nil
	}
	tk := ""
	if r.Action != ActionNotify {
		var err error
		if tk, err = s.ensureTicket(ctx, a, o, r, code); err != nil {
			return err
		}
	}
	marker := tk
	if marker == "" {
		marker = "notified"
	}
	prev, err := s.st.Get(ctx, keyFault(a.ID, code))
	switch {
	case err == nil && string(prev) == marker:
		return nil // a repeat
	case err != nil && !errors.Is(err, state.ErrNotFound):
		return err
	}
	evs := []api.Event{s.event(tk, o, api.EventFaultDetected, api.FaultPayload{ApplianceID: a.ID, Code: code, Description: r.Description, Action: r.Action})}
	tell := fmt.Sprintf("Your %s (serial %s) reported fault %s", a.Model, a.Serial, code)
	if r.Description != "" {
		tell += " (" + r.Description + ")"
	}
	switch r.Action {
	case ActionOpenTicket:
		tell += ". We opened a case and will be in touch."
	case ActionOrderPart:
		evs = append(evs, s.event(tk, o, api.EventPartOrdered, api.PartOrderedPayload{SKU: r.SKU, Quantity: 1, OrderID: newID("po_")}))
		tell += ". We have ordered the replacement part " + r.SKU + "."
	case ActionDispatch:
		evs = append(evs, s.event(tk, o, api.EventTechnicianDispatched, api.TechnicianPayload{Skill: r.Skill}))
		tell += ". A technician will be sent to you; we will tell you when."
	case ActionSalesLead:
		reason := r.Reason
		if reason == "" {
			reason = "fault " + code + " cannot be repaired"
		}
		evs = append(evs, s.event(tk, o, api.EventSalesLeadOpened, api.SalesLeadPayload{ApplianceID: a.ID, Reason: reason}))
		tell += ". It cannot be repaired; our team will contact you about a replacement."
	case ActionNotify:
		tell += "."
	}
	evs = append(evs, s.event(tk, o, api.EventMessage, api.MessagePayload{Text: tell}))
	if _, err := s.tickets.AppendBatch(ctx, evs); err != nil {
		return err
	}
	return s.st.Set(ctx, keyFault(a.ID, code), []byte(marker), faultMarkerTTL)
}

func (s *Service) event(tk string, o *owner, typ api.EventType, payload any) api.Event {
	p, _ := json.Marshal(payload)
	return api.Event{TicketID: tk, CustomerID: o.CustomerID, Type: typ, Actor: systemActor(), Channel: api.ChannelAppliance, Payload: p}
}
