package location

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/ticket"
)

// dispatchRecord is where a ticket's dispatch stands, under keyDispatch.
// Every step moves it with compare-and-swap from the offer it names, so
// of two nodes acting on the same offer (a decline racing the expiry
// worker) exactly one advances it.
type dispatchRecord struct {
	TicketID      string    `json:"ticket"`
	State         string    `json:"state"`
	Lat           float64   `json:"lat"`
	Lon           float64   `json:"lon"`
	RadiusM       float64   `json:"radius"`
	ArriveRadiusM float64   `json:"arrive_radius"`
	Skills        []string  `json:"skills,omitempty"`
	Tried         []string  `json:"tried,omitempty"`
	OfferID       string    `json:"offer,omitempty"`
	Tech          string    `json:"tech,omitempty"`
	ETASeconds    int       `json:"eta,omitempty"`
	DistanceM     int       `json:"dist,omitempty"`
	Expires       time.Time `json:"expires,omitzero"`
	By            api.Actor `json:"by"`
}

func (d *dispatchRecord) view() api.Dispatch {
	out := api.Dispatch{TicketID: d.TicketID, State: d.State, OfferID: d.OfferID, TechnicianID: d.Tech,
		ETASeconds: d.ETASeconds, DistanceM: d.DistanceM, Tried: len(d.Tried)}
	if d.State == api.DispatchOffering && !d.Expires.IsZero() {
		e := d.Expires
		out.ExpiresAt = &e
	}
	return out
}

// dispatchRetention is how long a finished dispatch record is kept: it
// answers GET .../dispatch and stops a second dispatch of an assigned
// ticket; a week outlives any visit.
const dispatchRetention = 7 * 24 * time.Hour

// Dispatch picks, reserves and offers the best technician for a ticket v
// may see: ranked by ETA to the job plus a penalty per job already held,
// among on-duty technicians with all the skills within the radius. The
// technician is reserved with a set-if-absent claim, so two dispatchers on
// two nodes never offer two jobs to one person at once; the offer lapses
// after OfferTimeout, and a decline or lapse moves on to the next
// candidate. Each step appends technician_dispatched with its stage.
func (s *Service) Dispatch(ctx context.Context, v ticket.Viewer, ticketID string, req api.DispatchRequest) (api.Dispatch, error) {
	if err := checkPoint("job", req.Lat, req.Lon); err != nil {
		return api.Dispatch{}, err
	}
	radius, err := s.checkRadius(req.RadiusM)
	if err != nil {
		return api.Dispatch{}, err
	}
	skills, err := checkSkills(req.Skills)
	if err != nil {
		return api.Dispatch{}, err
	}
	arrive := req.ArriveRadiusM
	switch {
	case math.IsNaN(arrive) || arrive < 0 || arrive > maxArriveRadiusM:
		return api.Dispatch{}, fmt.Errorf("%w: arrive_radius_m must be 0 to %d", ErrInvalid, maxArriveRadiusM)
	case arrive == 0:
		arrive = s.cfg.ArriveRadiusM
	}
	t, err := s.tickets.Get(ctx, v, ticketID)
	if err != nil {
		return api.Dispatch{}, err
	}
	if t.Status == api.StatusResolved || t.Status == api.StatusClosed {
		return api.Dispatch{}, fmt.Errorf("%w: the ticket is %s", ErrConflict, t.Status)
	}
	rec := dispatchRecord{TicketID: t.ID, State: api.DispatchOffering, Lat: req.Lat, Lon: req.Lon, RadiusM: radius,
		ArriveRadiusM: arrive, Skills: skills, By: api.Actor{ID: v.ID, Role: string(v.Role)}}
	raw, err := json.Marshal(rec)
	if err != nil {
		return api.Dispatch{}, err
	}
	var prev dispatchRecord
	old, err := s.getJSON(ctx, keyDispatch(t.ID), &prev)
	if err != nil {
		return api.Dispatch{}, err
	}
	if old != nil && (prev.State == api.DispatchOffering || prev.State == api.DispatchAssigned) {
		return api.Dispatch{}, fmt.Errorf("%w: the ticket's dispatch is already %s", ErrConflict, prev.State)
	}
	ok, err := s.st.CompareAndSwap(ctx, keyDispatch(t.ID), old, raw, dispatchRetention)
	if err != nil {
		return api.Dispatch{}, err
	}
	if !ok {
		return api.Dispatch{}, fmt.Errorf("%w: another dispatch of this ticket started", ErrConflict)
	}
	d, err := s.offerNext(ctx, t.ID, "")
	if errors.Is(err, ErrNoTechnician) {
		// Nobody was offered anything: leave no record behind, so the
		// dispatcher can widen the search and try again at once.
		_, _ = s.st.CompareAndDelete(context.WithoutCancel(ctx), keyDispatch(t.ID), raw)
	}
	return d, err
}

// DispatchStatus returns a ticket's dispatch, for a viewer who may see
// the ticket.
func (s *Service) DispatchStatus(ctx context.Context, v ticket.Viewer, ticketID string) (api.Dispatch, error) {
	if _, err := s.tickets.Get(ctx, v, ticketID); err != nil {
		return api.Dispatch{}, err
	}
	var d dispatchRecord
	raw, err := s.getJSON(ctx, keyDispatch(ticketID), &d)
	if err != nil {
		return api.Dispatch{}, err
	}
	if raw == nil {
		return api.Dispatch{}, fmt.Errorf("%w: the ticket was never dispatched", ErrNotFound)
	}
	return d.view(), nil
}

// offerNext offers the ticket's job to the best candidate not tried yet,
// if the dispatch still stands at fromOffer (the offer that was declined
// or lapsed; "" for the first). When another node already moved on it
// returns the record as it is. With no candidate left the dispatch is
// exhausted (ErrNoTechnician when nobody was ever offered it).
func (s *Service) offerNext(ctx context.Context, ticketID, fromOffer string) (api.Dispatch, error) {
	for range casRetries {
		var d dispatchRecord
		raw, err := s.getJSON(ctx, keyDispatch(ticketID), &d)
		if err != nil {
			return api.Dispatch{}, err
		}
		if raw == nil {
			return api.Dispatch{}, fmt.Errorf("%w: the ticket was never dispatched", ErrNotFound)
		}
		if d.State != api.DispatchOffering || d.OfferID != fromOffer {
			return d.view(), nil // someone else moved it on
		}
		cands, err := s.candidates(ctx, &d)
		if err != nil {
			return api.Dispatch{}, err
		}
		next, offer, err := s.reserve(ctx, d, cands)
		if err != nil {
			return api.Dispatch{}, err
		}
		if offer == nil && len(d.Tried) == 0 {
			// Nobody was ever offered the job: the caller removes the
			// record, so there is nothing to move to exhausted.
			return d.view(), fmt.Errorf("%w: none on duty with the skills within %.0f m, or all are booked", ErrNoTechnician, d.RadiusM)
		}
		data, err := json.Marshal(next)
		if err != nil {
			return api.Dispatch{}, err
		}
		ok, err := s.st.CompareAndSwap(ctx, keyDispatch(ticketID), raw, data, dispatchRetention)
		if err != nil || !ok {
			if offer != nil {
				s.cancelOffer(context.WithoutCancel(ctx), offer)
			}
			if err != nil {
				return api.Dispatch{}, err
			}
			continue // re-read: maybe the dispatch moved on, maybe a retry
		}
		if offer == nil {
			s.dispatchEvent(ctx, ticketID, api.OfferExhausted, d.Tried[len(d.Tried)-1], "", nil, 0, 0)
			return next.view(), nil
		}
		actor := api.Actor{ID: "system", Role: string(ticket.RoleSystem)}
		if fromOffer == "" {
			actor = d.By
		}
		exp := offer.Expires
		s.dispatchEventBy(ctx, actor, ticketID, api.OfferPending, offer.Tech, offer.ID, &exp, offer.ETASeconds, offer.DistanceM)
		return next.view(), nil
	}
	return api.Dispatch{}, fmt.Errorf("%w: the dispatch changed concurrently; retry", ErrConflict)
}

// reserve claims the first candidate whose claim is free and writes their
// offer; it returns the dispatch as it should become. No candidate left:
// the dispatch exhausted and a nil offer.
func (s *Service) reserve(ctx context.Context, d dispatchRecord, cands []candidate) (dispatchRecord, *offerRecord, error) {
	now := s.now().UTC()
	for _, c := range cands {
		id := newID("of_")
		// The claim outlives the offer by claimGrace, so the expiry worker
		// (a poll away) releases it, not the clock.
		won, err := s.st.SetNX(ctx, keyClaim(c.id), []byte(id), s.cfg.OfferTimeout+claimGrace)
		if err != nil {
			return d, nil, err
		}
		if !won {
			continue // booked by another dispatch, maybe on another node
		}
		o := &offerRecord{ID: id, TicketID: d.TicketID, Tech: c.id, State: api.OfferPending,
			Expires: now.Add(s.cfg.OfferTimeout), Lat: d.Lat, Lon: d.Lon, ArriveRadiusM: d.ArriveRadiusM,
			ETASeconds: int(s.ETA(c.distM).Seconds()), DistanceM: int(math.Round(c.distM))}
		if err := s.putOffer(ctx, o); err != nil {
			_, _ = s.st.CompareAndDelete(context.WithoutCancel(ctx), keyClaim(c.id), []byte(id))
			return d, nil, err
		}
		d.Tried = append(d.Tried, c.id)
		d.OfferID, d.Tech, d.Expires, d.ETASeconds, d.DistanceM = id, c.id, o.Expires, o.ETASeconds, o.DistanceM
		return d, o, nil
	}
	d.State, d.OfferID, d.Tech, d.Expires, d.ETASeconds, d.DistanceM = api.DispatchExhausted, "", "", time.Time{}, 0, 0
	return d, nil, nil
}

// claimGrace is how long a technician's claim outlives their offer: a few
// polls of the expiry worker.
const claimGrace = 30 * time.Second

func (s *Service) dispatchEvent(ctx context.Context, ticketID, stage, tech, offerID string, exp *time.Time, eta, dist int) {
	s.dispatchEventBy(ctx, api.Actor{ID: "system", Role: string(ticket.RoleSystem)}, ticketID, stage, tech, offerID, exp, eta, dist)
}

// dispatchEventBy appends technician_dispatched for one step. A failure
// is logged, not returned: the step itself already happened, and the
// dispatch record is its truth.
func (s *Service) dispatchEventBy(ctx context.Context, actor api.Actor, ticketID, stage, tech, offerID string, exp *time.Time, eta, dist int) {
	p, _ := json.Marshal(api.TechnicianPayload{TechnicianID: tech, OfferID: offerID, Stage: stage, ExpiresAt: exp, ETASeconds: eta, DistanceM: dist})
	if _, err := s.tickets.Append(context.WithoutCancel(ctx), api.Event{TicketID: ticketID, Type: api.EventTechnicianDispatched,
		Actor: actor, Channel: api.ChannelSystem, Payload: p}); err != nil {
		s.log.Error("dispatch event lost", "ticket", ticketID, "stage", stage, "err", err)
	}
}
