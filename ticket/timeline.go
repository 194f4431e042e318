package ticket

import (
	"context"
	"fmt"
	"math"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/state"
)

// Timeline returns a page of a ticket's events after the event ID after
// ("" from the start), oldest first, as v may see them.
func (s *Service) Timeline(ctx context.Context, v Viewer, ticketID, after string, limit int) (api.TicketView, error) {
	t, err := s.Get(ctx, v, ticketID)
	if err != nil {
		return api.TicketView{}, err
	}
	evs, next, err := s.page(ctx, ixTimeline(ticketID), after, limit, v.seesOnTimeline)
	if err != nil {
		return api.TicketView{}, err
	}
	return api.TicketView{Ticket: t, Events: evs, Next: next}, nil
}

// CustomerTimeline returns every event of a customer, across tickets and
// channels (and handles linked to them), oldest first. Customers may read
// only their own; staff any, but an agent who serves some queues only sees
// the events of tickets they may see (Get), as everywhere else.
func (s *Service) CustomerTimeline(ctx context.Context, v Viewer, customerID, after string, limit int) (api.Timeline, error) {
	switch {
	case v.isStaff():
	case v.Role == auth.RoleCustomer && v.ID == customerID:
	default:
		return api.Timeline{}, ErrNotFound
	}
	if customerID == "" || len(customerID) > maxShort {
		return api.Timeline{}, ErrNotFound
	}
	sees := v.seesOnTimeline
	if v.Role == auth.RoleAgent && len(v.Queues) > 0 {
		sees = s.ticketsSeenBy(ctx, v)
	}
	evs, next, err := s.page(ctx, ixCustomerTL(customerID), after, limit, sees)
	if err != nil {
		return api.Timeline{}, err
	}
	return api.Timeline{Events: evs, Next: next}, nil
}

// scanPerItem bounds the index entries a page reads for each item it may
// return (the ticket list has the same bound).
const scanPerItem = 20

// ticketsSeenBy is the event filter of a customer timeline for a viewer
// who may not see every ticket: an event of a ticket is shown if v may see
// the ticket now (its queue, as Get decides); an event of no ticket (a
// linked identity) is the customer's, shown to staff. Each ticket is
// loaded once per request, not once per event.
func (s *Service) ticketsSeenBy(ctx context.Context, v Viewer) func(*api.Event) bool {
	seen := map[string]bool{}
	return func(ev *api.Event) bool {
		if ev.TicketID == "" {
			return v.seesOnTimeline(ev)
		}
		ok, known := seen[ev.TicketID]
		if !known {
			t, _, err := s.loadTicket(ctx, ev.TicketID)
			ok = err == nil && v.CanSee(t)
			seen[ev.TicketID] = ok
		}
		return ok && v.seesOnTimeline(ev)
	}
}

// page reads up to limit events that sees lets through, after the cursor,
// from a timeline index. Members are zero-padded IDs scored by
// millisecond, so a range from the cursor's millisecond, skipping members
// up to the cursor, is exactly "after".
//
// It looks at no more than scanPerItem events for each one asked for: a
// viewer who may see little of a long timeline (a customer among internal
// notes, an agent among other queues' tickets) gets a short page, or an
// empty one, with a cursor to read on, rather than one request that
// walks the whole history.
func (s *Service) page(ctx context.Context, ix, after string, limit int, sees func(*api.Event) bool) ([]api.Event, string, error) {
	limit = clamp(limit, MaxPage)
	from := ""
	min := math.Inf(-1)
	if after != "" {
		m, score, err := member(after)
		if err != nil {
			return nil, "", fmt.Errorf("%w: malformed cursor %q", ErrInvalid, truncate(after, 40))
		}
		from, min = m, score
	}
	out := []api.Event{}
	offset := 0
	last := ""
	budget := limit * scanPerItem
	for len(out) < limit && budget > 0 {
		ms, err := s.st.ZRange(ctx, ix, state.RangeOptions{Min: min, Max: math.Inf(1), Offset: offset, Limit: limit + 1})
		if err != nil {
			return nil, "", err
		}
		offset += len(ms)
		var fresh []state.ScoredMember
		for _, m := range ms {
			if from != "" && m.Member <= from && m.Score == min {
				continue
			}
			fresh = append(fresh, m)
		}
		evs, err := s.eventsByID(ctx, fresh)
		if err != nil {
			return nil, "", err
		}
		// drained: every member read this round was looked at; a page
		// that fills up before that has more after it, even when this
		// read reached the end of the index.
		drained := true
		for i := range evs {
			last = evs[i].ID
			if budget--; budget == 0 {
				drained = i == len(evs)-1
			}
			if sees(&evs[i]) {
				out = append(out, evs[i])
				if len(out) == limit {
					drained = i == len(evs)-1
					break
				}
			}
			if budget == 0 {
				break
			}
		}
		if len(ms) < limit+1 && drained {
			return out, "", nil // read to the end
		}
	}
	return out, last, nil
}
