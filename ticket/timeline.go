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
	evs, next, err := s.page(ctx, v, ixTimeline(ticketID), after, limit)
	if err != nil {
		return api.TicketView{}, err
	}
	return api.TicketView{Ticket: t, Events: evs, Next: next}, nil
}

// CustomerTimeline returns every event of a customer, across tickets and
// channels (and handles linked to them), oldest first. Customers may read
// only their own; staff any.
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
	evs, next, err := s.page(ctx, v, ixCustomerTL(customerID), after, limit)
	if err != nil {
		return api.Timeline{}, err
	}
	return api.Timeline{Events: evs, Next: next}, nil
}

// page reads up to limit visible events after the cursor from a timeline
// index. Members are zero-padded IDs scored by millisecond, so a range
// from the cursor's millisecond, skipping members up to the cursor, is
// exactly "after".
func (s *Service) page(ctx context.Context, v Viewer, ix, after string, limit int) ([]api.Event, string, error) {
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
	for len(out) < limit {
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
			if v.seesOnTimeline(&evs[i]) {
				out = append(out, evs[i])
				if len(out) == limit {
					drained = i == len(evs)-1
					break
				}
			}
		}
		if len(ms) < limit+1 && drained {
			return out, "", nil // read to the end
		}
	}
	return out, last, nil
}
