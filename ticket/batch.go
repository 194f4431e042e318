package ticket

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/state"
)

// MaxBatch bounds AppendBatch: a batch is one atomic write (one embedded
// commit of at most a few MB, one Redis script of a few milliseconds).
const MaxBatch = 1000

// AppendBatch appends many events as one atomic write, in order:
// high-rate sources (appliance diagnostics) that would otherwise pay one
// commit per event. Every event is validated as Append does before
// anything is written, so a bad one fails the batch and nothing is
// written. When it returns nil all are durable and in their timelines.
func (s *Service) AppendBatch(ctx context.Context, evs []api.Event) ([]api.Event, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	if len(evs) > MaxBatch {
		return nil, fmt.Errorf("%w: more than %d events in one batch", ErrInvalid, MaxBatch)
	}
	tickets := map[string]*api.Ticket{}
	now := s.now().UTC()
	out := make([]api.Event, len(evs))
	entries := make([]state.IndexedEntry, len(evs))
	for i, ev := range evs {
		var t *api.Ticket
		if ev.TicketID != "" {
			var ok bool
			if t, ok = tickets[ev.TicketID]; !ok {
				var err error
				if t, _, err = s.loadTicket(ctx, ev.TicketID); err != nil {
					return nil, err
				}
				tickets[ev.TicketID] = t
			}
			ev.CustomerID, ev.Queue, ev.Status = t.CustomerID, t.Queue, t.Status
		}
		if ev.CustomerID == "" {
			return nil, fmt.Errorf("%w: an event needs a ticket or a customer", ErrInvalid)
		}
		if ev.Channel == "" {
			ev.Channel = api.ChannelSystem
		}
		payload, err := validatePayload(ev.Type, ev.Payload)
		if err != nil {
			return nil, err
		}
		ev.Payload, ev.Time, ev.ID = payload, now, ""
		data, err := json.Marshal(ev)
		if err != nil {
			return nil, err
		}
		entries[i] = state.IndexedEntry{Value: data, Indexes: indexesOf(&ev, t)}
		out[i] = ev
	}
	ids, err := s.st.XAddIndexed(ctx, StreamEvents, entries...)
	if err != nil {
		return nil, fmt.Errorf("append events: %w", err)
	}
	for i := range out {
		out[i].ID = ids[i]
		s.appended.count(out[i].Type)
	}
	return out, nil
}
