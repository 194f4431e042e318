package ticket

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/state"
)

// maxTags bounds a ticket's tags.
const maxTags = 32

var (
	statuses   = []api.TicketStatus{api.StatusOpen, api.StatusPending, api.StatusResolved, api.StatusClosed}
	priorities = []api.Priority{api.PriorityLow, api.PriorityNormal, api.PriorityHigh, api.PriorityUrgent}
)

// Open opens a ticket. A customer opens their own; staff and the system
// open one on behalf of req.CustomerID. It writes ticket_opened (and a
// first message when req.Message is set).
func (s *Service) Open(ctx context.Context, v Viewer, req api.OpenTicketRequest) (api.Ticket, error) {
	switch {
	case v.Role == auth.RoleCustomer:
		req.CustomerID = v.ID
	case v.isStaff() || v.Role == auth.RoleTechnician:
		if req.CustomerID == "" {
			return api.Ticket{}, fmt.Errorf("%w: customer_id is required when staff open a ticket", ErrInvalid)
		}
	default:
		return api.Ticket{}, ErrForbidden
	}
	if req.Channel == "" {
		req.Channel = defaultChannel(v)
	}
	if req.Priority == "" {
		req.Priority = api.PriorityNormal
	}
	if req.Queue == "" {
		req.Queue = api.DefaultQueue
	}
	if err := checkOpen(req); err != nil {
		return api.Ticket{}, err
	}
	now := s.now().UTC()
	t := api.Ticket{
		ID: newID("tk_"), CustomerID: req.CustomerID, Subject: req.Subject, Channel: req.Channel,
		Status: api.StatusOpen, Priority: req.Priority, Queue: req.Queue, Product: req.Product,
		ApplianceID: req.ApplianceID, Tags: req.Tags, CreatedAt: now, UpdatedAt: now,
	}
	raw, err := json.Marshal(t)
	if err != nil {
		return api.Ticket{}, err
	}
	ok, err := s.st.SetNX(ctx, keyTicket(t.ID), raw, 0)
	if err != nil {
		return api.Ticket{}, fmt.Errorf("store ticket: %w", err)
	}
	if !ok {
		return api.Ticket{}, ErrConflict // a random 100-bit ID taken: retry
	}
	opened, _ := json.Marshal(api.TicketOpenedPayload{Subject: t.Subject, Priority: t.Priority, Product: t.Product, ApplianceID: t.ApplianceID})
	evs := []api.Event{{TicketID: t.ID, Type: api.EventTicketOpened, Actor: v.actor(), Channel: req.Channel, Payload: opened}}
	if req.Message != "" {
		msg, _ := json.Marshal(api.MessagePayload{Text: req.Message})
		evs = append(evs, api.Event{TicketID: t.ID, Type: api.EventMessage, Actor: v.actor(), Channel: req.Channel, Payload: msg})
	}
	// One atomic write for the opening events; if it fails, the record
	// goes too, so no ticket exists without its events and list entries.
	out, err := s.AppendBatch(ctx, evs)
	if err != nil {
		_ = s.st.Delete(context.WithoutCancel(ctx), keyTicket(t.ID))
		return api.Ticket{}, err
	}
	t.LastEventID = out[len(out)-1].ID
	return t, nil
}

func defaultChannel(v Viewer) string {
	switch v.Role {
	case auth.RoleCustomer:
		return api.ChannelApp
	case auth.RoleTechnician:
		return api.ChannelField
	case RoleSystem:
		return api.ChannelSystem
	}
	return api.ChannelConsole
}

func checkOpen(req api.OpenTicketRequest) error {
	for _, f := range []struct {
		name, val string
		required  bool
	}{
		{"customer_id", req.CustomerID, true}, {"channel", req.Channel, true}, {"queue", req.Queue, true},
		{"product", req.Product, false}, {"appliance_id", req.ApplianceID, false},
	} {
		if err := short(f.name, f.val, f.required); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	if err := text("subject", req.Subject, true); err != nil || len(req.Subject) > 512 {
		return fmt.Errorf("%w: subject is required, at most 512 bytes", ErrInvalid)
	}
	if err := text("message", req.Message, false); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if !slices.Contains(priorities, req.Priority) {
		return fmt.Errorf("%w: priority must be low, normal, high or urgent", ErrInvalid)
	}
	if len(req.Tags) > maxTags {
		return fmt.Errorf("%w: at most %d tags", ErrInvalid, maxTags)
	}
	if err := list("tags", req.Tags); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

// Get returns a ticket v may see; anything else is ErrNotFound.
func (s *Service) Get(ctx context.Context, v Viewer, id string) (api.Ticket, error) {
	t, _, err := s.loadTicket(ctx, id)
	if err != nil {
		return api.Ticket{}, err
	}
	if !v.CanSee(t) {
		return api.Ticket{}, ErrNotFound
	}
	s.fillActivity(ctx, v, t)
	return *t, nil
}

// hiddenScan bounds how many of a ticket's newest events fillActivity
// reads to find the newest one a customer may see (notes are rare).
const hiddenScan = 16

// fillActivity sets UpdatedAt and LastEventID from the timeline, which the
// hot append path updates instead of rewriting the ticket record. A
// customer gets the newest event they may see: an internal note must not
// show through as activity they cannot read.
func (s *Service) fillActivity(ctx context.Context, v Viewer, t *api.Ticket) {
	n := 1
	if v.Role == auth.RoleCustomer {
		n = hiddenScan
	}
	last, err := s.st.ZRange(ctx, ixTimeline(t.ID), rangeAll(true, 0, n))
	if err != nil || len(last) == 0 {
		return
	}
	newest := last[0]
	if v.Role == auth.RoleCustomer {
		i := slices.IndexFunc(last, func(m state.ScoredMember) bool {
			ev, err := s.readEvent(ctx, m.Member)
			return err == nil && v.seesOnTimeline(ev)
		})
		if i < 0 {
			return // nothing they may see among the newest: the record's own time
		}
		newest = last[i]
	}
	t.LastEventID = trimMember(newest.Member)
	if ms := int64(newest.Score); ms >= t.UpdatedAt.UnixMilli() {
		t.UpdatedAt = unixMilli(ms)
	}
}

// Update changes a ticket's status, priority, queue, assignee, technician
// or tags, and writes status_changed. Agents and admins may change all;
// the dispatched technician may change the status only.
func (s *Service) Update(ctx context.Context, v Viewer, id string, req api.UpdateTicketRequest) (api.Ticket, error) {
	if err := checkUpdate(req); err != nil {
		return api.Ticket{}, err
	}
	for attempt := 0; attempt < 5; attempt++ {
		t, raw, err := s.loadTicket(ctx, id)
		if err != nil {
			return api.Ticket{}, err
		}
		if !v.CanSee(t) {
			return api.Ticket{}, ErrNotFound
		}
		if !v.isStaff() && (v.Role != auth.RoleTechnician || req.Priority != nil || req.Queue != nil ||
			req.Assignee != nil || req.Technician != nil || req.Tags != nil) {
			return api.Ticket{}, ErrForbidden
		}
		old := *t
		change := applyUpdate(t, req)
		t.UpdatedAt = s.now().UTC()
		next, err := json.Marshal(t)
		if err != nil {
			return api.Ticket{}, err
		}
		ok, err := s.st.CompareAndSwap(ctx, keyTicket(id), raw, next, 0)
		if err != nil {
			return api.Ticket{}, err
		}
		if !ok {
			continue // someone else changed it first: re-read and re-apply
		}
		if err := s.relist(ctx, &old, t); err != nil {
			return api.Ticket{}, err
		}
		payload, _ := json.Marshal(change)
		ev, err := s.Append(ctx, api.Event{TicketID: id, Type: api.EventStatusChanged, Actor: v.actor(), Channel: defaultChannel(v), Payload: payload})
		if err != nil {
			return api.Ticket{}, err
		}
		t.LastEventID = ev.ID
		return *t, nil
	}
	return api.Ticket{}, ErrConflict
}

func checkUpdate(req api.UpdateTicketRequest) error {
	if req.Status != nil && !slices.Contains(statuses, *req.Status) {
		return fmt.Errorf("%w: status must be open, pending, resolved or closed", ErrInvalid)
	}
	if req.Priority != nil && !slices.Contains(priorities, *req.Priority) {
		return fmt.Errorf("%w: priority must be low, normal, high or urgent", ErrInvalid)
	}
	if req.Queue != nil {
		if err := short("queue", *req.Queue, true); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	for name, p := range map[string]*string{"assignee": req.Assignee, "technician": req.Technician} {
		if p != nil {
			if err := short(name, *p, false); err != nil {
				return fmt.Errorf("%w: %v", ErrInvalid, err)
			}
		}
	}
	if req.Tags != nil {
		if len(*req.Tags) > maxTags {
			return fmt.Errorf("%w: at most %d tags", ErrInvalid, maxTags)
		}
		if err := list("tags", *req.Tags); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	if req == (api.UpdateTicketRequest{}) {
		return fmt.Errorf("%w: nothing to change", ErrInvalid)
	}
	return nil
}

// applyUpdate changes t and returns what changed, for the event.
func applyUpdate(t *api.Ticket, req api.UpdateTicketRequest) api.StatusChangedPayload {
	var c api.StatusChangedPayload
	if req.Status != nil && *req.Status != t.Status {
		c.From, c.To = t.Status, *req.Status
		t.Status = *req.Status
	}
	if req.Priority != nil {
		t.Priority = *req.Priority
		c.Priority = req.Priority
	}
	if req.Queue != nil {
		t.Queue = *req.Queue
		c.Queue = req.Queue
	}
	if req.Assignee != nil {
		t.Assignee = *req.Assignee
		c.Assignee = req.Assignee
	}
	if req.Technician != nil {
		t.Technician = *req.Technician
		c.Technician = req.Technician
	}
	if req.Tags != nil {
		t.Tags = *req.Tags
	}
	return c
}

// relist moves a changed ticket between the lists it is on.
func (s *Service) relist(ctx context.Context, old, t *api.Ticket) error {
	now := listsOf(t)
	for _, ix := range listsOf(old) {
		if !slices.Contains(now, ix) {
			if _, err := s.st.ZRem(ctx, ix, t.ID); err != nil {
				return err
			}
		}
	}
	return s.touch(ctx, t, msOf(t.UpdatedAt))
}

// Post is an event written by a user through the API: a message, a note,
// an offer. The type must be one v's role may post (see postable).
func (s *Service) Post(ctx context.Context, v Viewer, ticketID string, typ api.EventType, payload json.RawMessage) (api.Event, error) {
	t, _, err := s.loadTicket(ctx, ticketID)
	if err != nil {
		return api.Event{}, err
	}
	if !v.CanSee(t) {
		return api.Event{}, ErrNotFound
	}
	if !KnownType(typ) {
		return api.Event{}, fmt.Errorf("%w: unknown event type %q", ErrInvalid, truncate(string(typ), 40))
	}
	if !v.mayPost(typ) {
		return api.Event{}, fmt.Errorf("%w: your role may not post %s events", ErrForbidden, typ)
	}
	return s.Append(ctx, api.Event{TicketID: ticketID, Type: typ, Actor: v.actor(), Channel: defaultChannel(v), Payload: payload})
}
