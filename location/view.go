package location

import (
	"context"
	"fmt"
	"math"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/ticket"
)

// TechnicianFor is what a customer sees of the technician on the way to
// them: position and ETA, only for the customer's own ticket, only while
// the assigned technician holds the job and has not arrived. Before the
// dispatch is accepted and after arrival there is nothing to see
// (ErrNotFound), and nobody but the ticket's customer may ask
// (ErrForbidden): a technician's position is not for browsing.
func (s *Service) TechnicianFor(ctx context.Context, v ticket.Viewer, ticketID string) (api.TechnicianPosition, error) {
	if v.Role != auth.RoleCustomer {
		return api.TechnicianPosition{}, fmt.Errorf("%w: only the ticket's customer sees the technician on the way", ErrForbidden)
	}
	t, err := s.tickets.Get(ctx, v, ticketID)
	if err != nil {
		return api.TechnicianPosition{}, err
	}
	none := fmt.Errorf("%w: no technician is on the way", ErrNotFound)
	if t.Technician == "" || t.Status == api.StatusResolved || t.Status == api.StatusClosed {
		return api.TechnicianPosition{}, none
	}
	var rec techRecord
	if _, err := s.getJSON(ctx, keyTech(t.Technician), &rec); err != nil {
		return api.TechnicianPosition{}, err
	}
	j := rec.job(t.ID)
	if j == nil {
		return api.TechnicianPosition{}, none
	}
	if done, err := s.arrived(ctx, j); err != nil || done {
		if err != nil {
			return api.TechnicianPosition{}, err
		}
		return api.TechnicianPosition{}, none
	}
	var last lastRecord
	raw, err := s.getJSON(ctx, keyLast(t.Technician), &last)
	if err != nil {
		return api.TechnicianPosition{}, err
	}
	if raw == nil || !s.fresh(last.Fix.Time) {
		return api.TechnicianPosition{}, fmt.Errorf("%w: the technician's position is not known right now", ErrNotFound)
	}
	dist := state.Distance(last.Fix.Lat, last.Fix.Lon, j.Lat, j.Lon)
	return api.TechnicianPosition{TechnicianID: t.Technician, Lat: last.Fix.Lat, Lon: last.Fix.Lon, AccuracyM: last.Fix.AccuracyM,
		FixTime: last.Fix.Time, DistanceM: int(math.Round(dist)), ETASeconds: int(s.ETA(dist).Seconds())}, nil
}

// Complete ends technician tech's job on a ticket: it leaves their load,
// so dispatch may offer them more, and the ticket may be dispatched
// again. The ticket's status is the technician's to change through the
// ticket API.
func (s *Service) Complete(ctx context.Context, tech, ticketID string) error {
	if checkID("ticket", ticketID) != nil {
		return fmt.Errorf("%w: no such job", ErrNotFound)
	}
	offer := ""
	_, _, err := s.updateTech(ctx, tech, func(r *techRecord) error {
		for i := range r.Jobs {
			if r.Jobs[i].TicketID == ticketID {
				offer = r.Jobs[i].OfferID
				r.Jobs = append(r.Jobs[:i], r.Jobs[i+1:]...)
				return nil
			}
		}
		return fmt.Errorf("%w: no such job", ErrNotFound)
	})
	if err != nil {
		return err
	}
	return s.moveDispatch(ctx, ticketID, offer, func(d *dispatchRecord) { d.State = api.DispatchCompleted })
}
