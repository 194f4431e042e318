package ticket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/loop"
	"github.com/switchboard/switchboard/state"
)

const (
	ixFollowUps = "fu:due"
	// followUpClaimTTL is how long a node may take to fire one follow-up
	// before another node may try; firing is two writes, far under it.
	followUpClaimTTL = 30 * time.Second
	// followUpFiredTTL keeps the "fired" marker long after any retry.
	followUpFiredTTL = 30 * 24 * time.Hour
	// maxFollowUpAhead bounds how far ahead one can be scheduled.
	maxFollowUpAhead = 366 * 24 * time.Hour
	// followUpPoll is how often each node looks for due follow-ups: the
	// precision of "call back at 10:00".
	followUpPoll = time.Second
)

var followUpActions = []string{api.FollowUpCallBack, api.FollowUpOffer, api.FollowUpReminder}

func keyFollowUp(id string) string      { return "fu:" + id }
func keyFollowUpClaim(id string) string { return "fu:claim:" + id }
func keyFollowUpFired(id string) string { return "fu:fired:" + id }

// ScheduleFollowUp schedules an action on a ticket for a later time
// ("call back tomorrow with an offer"); it writes follow_up_scheduled now
// and follow_up_due when it fires.
func (s *Service) ScheduleFollowUp(ctx context.Context, v Viewer, ticketID string, req api.FollowUpRequest) (api.FollowUp, error) {
	if !v.isStaff() {
		return api.FollowUp{}, ErrForbidden
	}
	if _, err := s.Get(ctx, v, ticketID); err != nil {
		return api.FollowUp{}, err
	}
	if err := s.CheckFollowUp(req); err != nil {
		return api.FollowUp{}, err
	}
	fu := api.FollowUp{ID: newID("fu_"), TicketID: ticketID, At: req.At.UTC(), Action: req.Action, Note: req.Note, Offer: req.Offer, By: v.ID}
	raw, _ := json.Marshal(fu)
	if err := s.st.Set(ctx, keyFollowUp(fu.ID), raw, 0); err != nil {
		return api.FollowUp{}, err
	}
	if err := s.st.ZAdd(ctx, ixFollowUps, fu.ID, msOf(fu.At)); err != nil {
		return api.FollowUp{}, err
	}
	if _, err := s.Append(ctx, api.Event{TicketID: ticketID, Type: api.EventFollowUpScheduled, Actor: v.actor(),
		Channel: defaultChannel(v), Payload: followUpPayload(fu)}); err != nil {
		return api.FollowUp{}, err
	}
	return fu, nil
}

// CheckFollowUp reports, wrapping ErrInvalid, why ScheduleFollowUp would
// refuse req, so that a caller with something to undo can check first.
func (s *Service) CheckFollowUp(req api.FollowUpRequest) error {
	now := s.now()
	switch {
	case !slices.Contains(followUpActions, req.Action):
		return fmt.Errorf("%w: action must be call_back, offer or reminder", ErrInvalid)
	case req.At.IsZero() || req.At.Before(now.Add(-time.Minute)):
		return fmt.Errorf("%w: at must be a time in the future", ErrInvalid)
	case req.At.After(now.Add(maxFollowUpAhead)):
		return fmt.Errorf("%w: at must be within a year", ErrInvalid)
	case req.Action == api.FollowUpOffer && req.Offer == "":
		return fmt.Errorf("%w: an offer follow-up needs offer", ErrInvalid)
	}
	for name, val := range map[string]string{"note": req.Note, "offer": req.Offer} {
		if err := text(name, val, false); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	// Each within MaxText, note and offer may still make an event over
	// MaxPayload once JSON-encoded ('<' takes six bytes there, '"' two),
	// which Append refuses after the follow-up is stored and indexed: it
	// would fire anyway, and its follow_up_due would fail every FireDue.
	// So the event is checked here as Append will check it.
	fu := api.FollowUp{ID: newID("fu_"), At: req.At.UTC(), Action: req.Action, Note: req.Note, Offer: req.Offer}
	_, err := validatePayload(api.EventFollowUpScheduled, followUpPayload(fu))
	return err
}

func followUpPayload(fu api.FollowUp) json.RawMessage {
	raw, _ := json.Marshal(api.FollowUpPayload{FollowUpID: fu.ID, At: fu.At, Action: fu.Action, Note: fu.Note, Offer: fu.Offer})
	return raw
}

// RunFollowUps fires due follow-ups until ctx ends. Every node runs it;
// each follow-up fires exactly once: a node must win a claim (SetNX with a
// lease) to fire it, and a "fired" marker plus a look at the ticket's
// recent events stop a second firing after a node died mid-way.
func (s *Service) RunFollowUps(ctx context.Context, node string) error {
	fire := func(ctx context.Context) error { return s.FireDue(ctx, node) }
	loop.Every(ctx, followUpPoll, fire, func(err error) { s.log.Warn("follow-ups", "err", err) })
	return nil
}

// FireDue fires the follow-ups due by now and returns the first error.
func (s *Service) FireDue(ctx context.Context, node string) error {
	due, err := s.st.ZRange(ctx, ixFollowUps, state.RangeOptions{Min: math.Inf(-1), Max: msOf(s.now()), Limit: 100})
	if err != nil {
		return err
	}
	for _, m := range due {
		if err := s.fire(ctx, node, m.Member); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) fire(ctx context.Context, node, id string) error {
	won, err := s.st.SetNX(ctx, keyFollowUpClaim(id), []byte(node), followUpClaimTTL)
	if err != nil || !won {
		return err // another node is firing it
	}
	defer s.st.CompareAndDelete(context.WithoutCancel(ctx), keyFollowUpClaim(id), []byte(node))
	if _, err := s.st.Get(ctx, keyFollowUpFired(id)); err == nil {
		_, err := s.st.ZRem(ctx, ixFollowUps, id)
		return err
	}
	raw, err := s.st.Get(ctx, keyFollowUp(id))
	if errors.Is(err, state.ErrNotFound) {
		_, err := s.st.ZRem(ctx, ixFollowUps, id)
		return err
	}
	if err != nil {
		return err
	}
	var fu api.FollowUp
	if err := json.Unmarshal(raw, &fu); err != nil {
		return err
	}
	already, err := s.firedOnTimeline(ctx, fu)
	if err != nil {
		return err
	}
	if !already {
		if _, err := s.Append(ctx, api.Event{TicketID: fu.TicketID, Type: api.EventFollowUpDue, Actor: System.actor(),
			Channel: api.ChannelSystem, Payload: followUpPayload(fu)}); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	if err := s.st.Set(ctx, keyFollowUpFired(id), []byte(node), followUpFiredTTL); err != nil {
		return err
	}
	_, err = s.st.ZRem(ctx, ixFollowUps, id)
	return err
}

// firedOnTimeline looks for this follow-up's follow_up_due among the
// ticket's latest events: it closes the window between a node appending
// the event and dying before it set the fired marker.
func (s *Service) firedOnTimeline(ctx context.Context, fu api.FollowUp) (bool, error) {
	recent, err := s.st.ZRange(ctx, ixTimeline(fu.TicketID), rangeAll(true, 0, 50))
	if err != nil {
		return false, err
	}
	evs, err := s.eventsByID(ctx, recent)
	if err != nil {
		return false, err
	}
	for _, ev := range evs {
		if ev.Type != api.EventFollowUpDue {
			continue
		}
		var p api.FollowUpPayload
		if json.Unmarshal(ev.Payload, &p) == nil && p.FollowUpID == fu.ID {
			return true, nil
		}
	}
	return false, nil
}
