package location

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/loop"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/ticket"
)

// offerRecord is a job offered to one technician, under keyOffer. Its
// State moves out of pending exactly once, by compare-and-swap: accept,
// decline and the expiry worker race for it, and only the winner writes
// the step's event and moves the dispatch on.
type offerRecord struct {
	ID            string    `json:"id"`
	TicketID      string    `json:"ticket"`
	Tech          string    `json:"tech"`
	State         string    `json:"state"`
	Expires       time.Time `json:"expires"`
	Lat           float64   `json:"lat"`
	Lon           float64   `json:"lon"`
	ArriveRadiusM float64   `json:"arrive_radius"`
	ETASeconds    int       `json:"eta"`
	DistanceM     int       `json:"dist"`
}

// offerCancelled is the state of an offer whose dispatch moved on before
// it was published; it is never shown.
const offerCancelled = "cancelled"

func (o *offerRecord) view() api.Offer {
	return api.Offer{ID: o.ID, TicketID: o.TicketID, TechnicianID: o.Tech, State: o.State, ExpiresAt: o.Expires,
		Lat: o.Lat, Lon: o.Lon, ETASeconds: o.ETASeconds, DistanceM: o.DistanceM}
}

func (s *Service) putOffer(ctx context.Context, o *offerRecord) error {
	data, err := json.Marshal(o)
	if err != nil {
		return err
	}
	return parallel(
		func() error { return s.st.Set(ctx, keyOffer(o.ID), data, dispatchRetention) },
		func() error { return s.st.ZAdd(ctx, ixOffers, o.ID, float64(o.Expires.UnixMilli())) },
	)
}

// loadOffer reads an offer; a missing one is ErrNotFound.
func (s *Service) loadOffer(ctx context.Context, id string) (*offerRecord, []byte, error) {
	if checkID("offer", id) != nil {
		return nil, nil, fmt.Errorf("%w: no such offer", ErrNotFound)
	}
	var o offerRecord
	raw, err := s.getJSON(ctx, keyOffer(id), &o)
	if err != nil {
		return nil, nil, err
	}
	if raw == nil {
		return nil, nil, fmt.Errorf("%w: no such offer", ErrNotFound)
	}
	return &o, raw, nil
}

// settle moves an offer out of pending to state and reports whether this
// call did it (false: someone else settled it first).
func (s *Service) settle(ctx context.Context, o *offerRecord, raw []byte, to string) (bool, error) {
	next := *o
	next.State = to
	data, err := json.Marshal(next)
	if err != nil {
		return false, err
	}
	ok, err := s.st.CompareAndSwap(ctx, keyOffer(o.ID), raw, data, dispatchRetention)
	if err != nil || !ok {
		return false, err
	}
	o.State = to
	// Settled offers free the technician's claim (only if it is still
	// this offer's) and leave the expiry index, except an accepted one,
	// which stays until finishAccept is done with it.
	_ = parallel(
		func() error {
			if to == api.OfferAccepted {
				return nil
			}
			_, err := s.st.ZRem(ctx, ixOffers, o.ID)
			return err
		},
		func() error { _, err := s.st.CompareAndDelete(ctx, keyClaim(o.Tech), []byte(o.ID)); return err },
	)
	return true, nil
}

// cancelOffer withdraws an offer that was never published (its dispatch
// moved on first).
func (s *Service) cancelOffer(ctx context.Context, o *offerRecord) {
	_, raw, err := s.loadOffer(ctx, o.ID)
	if err == nil {
		_, _ = s.settle(ctx, o, raw, offerCancelled)
	}
}

// CurrentOffer returns the offer waiting for technician tech, if any.
func (s *Service) CurrentOffer(ctx context.Context, tech string) (api.Offer, error) {
	if err := checkID("technician", tech); err != nil {
		return api.Offer{}, ErrNotFound
	}
	id, err := s.st.Get(ctx, keyClaim(tech))
	if err != nil {
		if isNotFound(err) {
			return api.Offer{}, fmt.Errorf("%w: no offer is waiting", ErrNotFound)
		}
		return api.Offer{}, err
	}
	o, _, err := s.loadOffer(ctx, string(id))
	if err != nil {
		return api.Offer{}, err
	}
	if o.State != api.OfferPending {
		return api.Offer{}, fmt.Errorf("%w: no offer is waiting", ErrNotFound)
	}
	return o.view(), nil
}

// mine loads an offer made to tech; anyone else's is ErrNotFound.
func (s *Service) mine(ctx context.Context, tech, offerID string) (*offerRecord, []byte, error) {
	o, raw, err := s.loadOffer(ctx, offerID)
	if err != nil {
		return nil, nil, err
	}
	if o.Tech != tech {
		return nil, nil, fmt.Errorf("%w: no such offer", ErrNotFound)
	}
	if o.State != api.OfferPending {
		return nil, nil, fmt.Errorf("%w: the offer was already %s", ErrConflict, o.State)
	}
	if !s.now().Before(o.Expires) {
		return nil, nil, fmt.Errorf("%w: the offer expired", ErrConflict)
	}
	return o, raw, nil
}

// Accept is technician tech taking offer offerID: the ticket's technician
// becomes tech (ticket.Service.Update as the system, which writes
// status_changed), the job joins their load, and technician_dispatched
// records the acceptance. Accepting an offer tech already accepted
// finishes what is left of it and answers as the first time did, so an
// app retrying after a lost answer is safe.
func (s *Service) Accept(ctx context.Context, tech, offerID string) (api.Offer, error) {
	o, raw, err := s.loadOffer(ctx, offerID)
	if err == nil && o.Tech == tech && o.State == api.OfferAccepted {
		return s.finishAccept(context.WithoutCancel(ctx), o)
	}
	if o, raw, err = s.mine(ctx, tech, offerID); err != nil {
		return api.Offer{}, err
	}
	won, err := s.settle(ctx, o, raw, api.OfferAccepted)
	if err != nil {
		return api.Offer{}, err
	}
	if !won {
		return api.Offer{}, fmt.Errorf("%w: the offer was settled first (expired or withdrawn)", ErrConflict)
	}
	// From here the acceptance stands; the remaining steps are finished
	// even if the caller goes away.
	return s.finishAccept(context.WithoutCancel(ctx), o)
}

// finishAccept makes an accepted offer take effect: the job joins the
// technician's load, the ticket names them, technician_dispatched records
// the acceptance and the dispatch is assigned. Each step looks before it
// writes, so it may run again: the offer stays in the expiry index until
// this is done, and ExpireDue finishes it for a node that died partway.
func (s *Service) finishAccept(ctx context.Context, o *offerRecord) (api.Offer, error) {
	_, rec, err := s.updateTech(ctx, o.Tech, func(r *techRecord) error {
		if r.job(o.TicketID) == nil {
			r.Jobs = append(r.Jobs, job{TicketID: o.TicketID, OfferID: o.ID, Lat: o.Lat, Lon: o.Lon,
				ArriveRadiusM: o.ArriveRadiusM, AcceptedAt: s.now().UTC()})
		}
		return nil
	})
	if err != nil {
		return api.Offer{}, err
	}
	t, err := s.tickets.Get(ctx, ticket.System, o.TicketID)
	if err != nil {
		return api.Offer{}, err
	}
	if t.Technician != o.Tech {
		if _, err := s.tickets.Update(ctx, ticket.System, o.TicketID, api.UpdateTicketRequest{Technician: &o.Tech}); err != nil {
			return api.Offer{}, err
		}
	}
	// The event while the dispatch still waits on this offer, then the
	// move: a node dying between the two repeats the event, never loses it.
	var d dispatchRecord
	raw, err := s.getJSON(ctx, keyDispatch(o.TicketID), &d)
	if err != nil {
		return api.Offer{}, err
	}
	if raw != nil && d.OfferID == o.ID && d.State != api.DispatchAssigned {
		s.dispatchEventBy(ctx, api.Actor{ID: o.Tech, Role: "technician"}, o.TicketID, api.OfferAccepted, o.Tech, o.ID, nil, o.ETASeconds, o.DistanceM)
		if err := s.moveDispatch(ctx, o.TicketID, o.ID, func(d *dispatchRecord) { d.State = api.DispatchAssigned }); err != nil {
			return api.Offer{}, err
		}
	}
	if _, err := s.st.ZRem(ctx, ixOffers, o.ID); err != nil {
		return api.Offer{}, err
	}
	// The technician may already be close.
	var last lastRecord
	if raw, err := s.getJSON(ctx, keyLast(o.Tech), &last); err == nil && raw != nil {
		s.checkArrival(ctx, o.Tech, &rec, last.Fix)
	}
	return o.view(), nil
}

// Decline is technician tech refusing an offer: technician_dispatched
// records it and the job goes to the next candidate.
func (s *Service) Decline(ctx context.Context, tech, offerID string) (api.Offer, error) {
	o, raw, err := s.mine(ctx, tech, offerID)
	if err != nil {
		return api.Offer{}, err
	}
	won, err := s.settle(ctx, o, raw, api.OfferDeclined)
	if err != nil {
		return api.Offer{}, err
	}
	if !won {
		return api.Offer{}, fmt.Errorf("%w: the offer was settled first (expired or withdrawn)", ErrConflict)
	}
	ctx = context.WithoutCancel(ctx)
	s.dispatchEventBy(ctx, api.Actor{ID: tech, Role: "technician"}, o.TicketID, api.OfferDeclined, tech, o.ID, nil, 0, 0)
	if _, err := s.offerNext(ctx, o.TicketID, o.ID); err != nil && !isNoTech(err) {
		s.log.Error("next candidate", "ticket", o.TicketID, "err", err)
	}
	return o.view(), nil
}

// moveDispatch applies change to the dispatch if it still stands at offer.
func (s *Service) moveDispatch(ctx context.Context, ticketID, offer string, change func(*dispatchRecord)) error {
	for range casRetries {
		var d dispatchRecord
		raw, err := s.getJSON(ctx, keyDispatch(ticketID), &d)
		if err != nil || raw == nil || d.OfferID != offer {
			return err
		}
		change(&d)
		data, err := json.Marshal(d)
		if err != nil {
			return err
		}
		ok, err := s.st.CompareAndSwap(ctx, keyDispatch(ticketID), raw, data, dispatchRetention)
		if err != nil || ok {
			return err
		}
	}
	return fmt.Errorf("%w: the dispatch changed concurrently", ErrConflict)
}

// expireBatch bounds the offers one pass settles.
const expireBatch = 100

// ExpireDue settles every offer whose accept timeout passed: the node
// that wins the offer's compare-and-swap writes "expired" and moves the
// dispatch on, so across nodes each lapse happens exactly once. An offer
// settled by a node that died before moving its dispatch on is moved on
// here too (offerNext only acts while the dispatch still names it), and
// an acceptance whose node died before it took effect is finished.
func (s *Service) ExpireDue(ctx context.Context) error {
	due, err := s.st.ZRange(ctx, ixOffers, state.RangeOptions{Min: math.Inf(-1), Max: float64(s.now().UnixMilli()), Limit: expireBatch})
	if err != nil {
		return err
	}
	for _, m := range due {
		o, raw, err := s.loadOffer(ctx, m.Member)
		if err != nil {
			if isNotFound(err) {
				_, _ = s.st.ZRem(ctx, ixOffers, m.Member)
				continue
			}
			return err
		}
		switch o.State {
		case api.OfferPending:
			won, err := s.settle(ctx, o, raw, api.OfferExpired)
			if err != nil {
				return err
			}
			if won {
				s.dispatchEvent(ctx, o.TicketID, api.OfferExpired, o.Tech, o.ID, nil, 0, 0)
			}
		case api.OfferAccepted: // its accepting node died partway
			if _, err := s.finishAccept(ctx, o); err != nil {
				return err
			}
		default:
			_, _ = s.st.ZRem(ctx, ixOffers, o.ID)
		}
		if o.State == api.OfferExpired || o.State == api.OfferDeclined {
			if _, err := s.offerNext(ctx, o.TicketID, o.ID); err != nil && !isNoTech(err) {
				s.log.Error("next candidate", "ticket", o.TicketID, "err", err)
			}
		}
	}
	return nil
}

// RunOffers expires offers every OfferPoll until ctx ends; every node
// runs it.
func (s *Service) RunOffers(ctx context.Context) error {
	loop.Every(ctx, s.cfg.OfferPoll, s.ExpireDue, func(err error) { s.log.Warn("offer expiry failed; retrying", "err", err) })
	return nil
}
