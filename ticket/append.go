package ticket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
// The event, its ticket and customer timeline entries and its ticket's
// list positions are one atomic write (state.XAddIndexed): when Append
// returns nil all of it is durable, and a crash never leaves one without
// the other.
func (s *Service) Append(ctx context.Context, ev api.Event) (api.Event, error) {
	out, err := s.AppendBatch(ctx, []api.Event{ev})
	if err != nil {
		return api.Event{}, err
	}
	return out[0], nil
}

// indexesOf names the index entries written with an event: its place on
// its ticket's and customer's timelines (the event's ID as member) and its
// ticket's place, by last activity, in every list that shows the ticket.
func indexesOf(ev *api.Event, t *api.Ticket) []state.IndexEntry {
	idx := make([]state.IndexEntry, 0, 6)
	if t != nil {
		idx = append(idx, state.IndexEntry{Index: ixTimeline(t.ID)})
	}
	idx = append(idx, state.IndexEntry{Index: ixCustomerTL(ev.CustomerID)})
	if t != nil {
		for _, ix := range listsOf(t) {
			if ev.Type == api.EventNote && ix == ixCustomer(t.CustomerID) {
				continue // the customer's own list must not move for a note they cannot read
			}
			idx = append(idx, state.IndexEntry{Index: ix, Member: t.ID})
		}
	}
	return idx
}

// touch puts t at score (its last activity, in ms) in every list that
// shows it.
func (s *Service) touch(ctx context.Context, t *api.Ticket, score float64) error {
	for _, ix := range listsOf(t) {
		if err := s.st.ZAdd(ctx, ix, t.ID, score); err != nil {
			return err
		}
	}
	return nil
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
