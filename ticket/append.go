package ticket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/state"
)

// Append writes one event to the stream and its timelines. It is how
// every domain (calls, photos, push, dispatch, appliances) records what
// happened. ev.TicketID, when set, must name an existing ticket, whose
// customer, queue and status the event takes; otherwise ev.CustomerID is
// required. Type and payload are validated; ID and Time are assigned.
//
// When Append returns nil the event is durable (the backend's XAdd
// guarantee) and visible in the timelines.
func (s *Service) Append(ctx context.Context, ev api.Event) (api.Event, error) {
	if ev.TicketID != "" {
		t, _, err := s.loadTicket(ctx, ev.TicketID)
		if err != nil {
			return api.Event{}, err
		}
		ev.CustomerID, ev.Queue, ev.Status = t.CustomerID, t.Queue, t.Status
	}
	if ev.CustomerID == "" {
		return api.Event{}, fmt.Errorf("%w: an event needs a ticket or a customer", ErrInvalid)
	}
	if ev.Channel == "" {
		ev.Channel = api.ChannelSystem
	}
	payload, err := validatePayload(ev.Type, ev.Payload)
	if err != nil {
		return api.Event{}, err
	}
	ev.Payload = payload
	ev.Time = s.now().UTC()
	ev.ID = ""
	data, err := json.Marshal(ev)
	if err != nil {
		return api.Event{}, err
	}
	ids, err := s.st.XAdd(ctx, StreamEvents, data)
	if err != nil {
		return api.Event{}, fmt.Errorf("append event: %w", err)
	}
	ev.ID = ids[0]
	if err := s.project(ctx, &ev); err != nil {
		// The event is in the log; the projector will finish the job.
		s.log.Warn("projection deferred", "event", ev.ID, "err", err)
	}
	return ev, nil
}

// project adds an event to its ticket's and customer's timelines and moves
// its ticket to the top of the lists it is on. Every step is idempotent
// (ZAdd of the same member and score), so the projector may repeat it.
//
// The writes are independent, so they are issued concurrently: the
// embedded store commits writes that are queued together in one
// transaction (one fsync), and Redis runs them on parallel connections.
// That makes projection two commit waits instead of five. The customer
// timeline is still written last, after every other write succeeded: the
// projector takes an event found there as fully projected.
func (s *Service) project(ctx context.Context, ev *api.Event) error {
	m, score, err := member(ev.ID)
	if err != nil {
		return err
	}
	if ev.TicketID != "" {
		var wg sync.WaitGroup
		var errs [2]error
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[0] = s.st.ZAdd(ctx, ixTimeline(ev.TicketID), m, score)
		}()
		t, _, err := s.loadTicket(ctx, ev.TicketID)
		if err == nil {
			err = s.touch(ctx, t, score)
		}
		errs[1] = err
		wg.Wait()
		if err := errors.Join(errs[:]...); err != nil {
			return err
		}
	}
	return s.st.ZAdd(ctx, ixCustomerTL(ev.CustomerID), m, score)
}

// touch puts t at score (its last activity, in ms) in every list that
// shows it, all at once (see project).
func (s *Service) touch(ctx context.Context, t *api.Ticket, score float64) error {
	ixs := listsOf(t)
	errs := make([]error, len(ixs))
	var wg sync.WaitGroup
	for i, ix := range ixs[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i+1] = s.st.ZAdd(ctx, ix, t.ID, score)
		}()
	}
	errs[0] = s.st.ZAdd(ctx, ixs[0], t.ID, score)
	wg.Wait()
	return errors.Join(errs...)
}

// listsOf names the ticket lists t belongs on.
func listsOf(t *api.Ticket) []string {
	ixs := []string{ixAll(), ixCustomer(t.CustomerID), ixQueue(t.Queue)}
	if t.Technician != "" {
		ixs = append(ixs, ixTechnician(t.Technician))
	}
	return ixs
}

// readEvent fetches one event from the stream by ID.
func (s *Service) readEvent(ctx context.Context, id string) (*api.Event, error) {
	p, err := state.ParseID(id)
	if err != nil {
		return nil, err
	}
	// XRead returns entries after a cursor; the cursor just before id is
	// (ms, seq-1), or the last possible ID of the previous millisecond.
	prev := state.ID{Ms: p.Ms, Seq: p.Seq - 1}
	if p.Seq == 0 {
		prev = state.ID{Ms: p.Ms - 1, Seq: 1<<64 - 1}
	}
	es, err := s.st.XRead(ctx, StreamEvents, prev.String(), 1, 0)
	if err != nil {
		return nil, err
	}
	if len(es) == 0 || es[0].ID != p.String() {
		return nil, fmt.Errorf("event %s: %w", id, state.ErrNotFound)
	}
	return decodeEvent(es[0])
}

// decodeEvent turns a stream entry into an event.
func decodeEvent(e state.Entry) (*api.Event, error) {
	var ev api.Event
	if err := json.Unmarshal(e.Data, &ev); err != nil {
		return nil, fmt.Errorf("event %s: corrupt: %w", e.ID, err)
	}
	ev.ID = e.ID
	return &ev, nil
}

// DecodeEvent turns an entry of StreamEvents into an event, for consumers
// of the stream (live feed, webhooks, push rules).
func DecodeEvent(e state.Entry) (*api.Event, error) { return decodeEvent(e) }

// eventsByID reads the events named by index members, skipping ones whose
// stream entry is gone; order is kept.
func (s *Service) eventsByID(ctx context.Context, members []state.ScoredMember) ([]api.Event, error) {
	out := make([]api.Event, 0, len(members))
	for _, m := range members {
		ev, err := s.readEvent(ctx, m.Member)
		if errors.Is(err, state.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, *ev)
	}
	return out, nil
}

// msOf is a time as index score.
func msOf(t time.Time) float64 { return float64(t.UnixMilli()) }
