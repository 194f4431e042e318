package ticket

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

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
	return s.appendBatch(ctx, evs, func(_ int, ev *api.Event) (json.RawMessage, error) {
		return validatePayload(ev.Type, ev.Payload)
	})
}

// AppendBatchTyped is AppendBatch for producers inside the gateway that
// build their payloads as Go values (appliance diagnostics, tens of
// thousands a second): payloads[i] is evs[i]'s payload, of its type's
// struct. It is checked by the same rules and marshalled once, without
// the decode and re-encode that validate a payload from outside (a third
// of the cost of recording a diagnostic). evs[i].Payload is ignored.
func AppendBatchTyped[P any](ctx context.Context, s *Service, evs []api.Event, payloads []P) ([]api.Event, error) {
	if len(payloads) != len(evs) {
		return nil, fmt.Errorf("%w: %d payloads for %d events", ErrInvalid, len(payloads), len(evs))
	}
	return s.appendBatch(ctx, evs, func(i int, ev *api.Event) (json.RawMessage, error) {
		p := &payloads[i]
		mk, ok := payloadTypes[ev.Type]
		if !ok {
			return nil, fmt.Errorf("%w: unknown event type %q", ErrInvalid, truncate(string(ev.Type), 40))
		}
		if want := mk(); reflect.TypeOf(want) != reflect.TypeOf(p) {
			return nil, fmt.Errorf("%w: a %s payload is a %T, not a %T", ErrInvalid, ev.Type, want, p)
		}
		if err := checkPayload(p); err != nil {
			return nil, fmt.Errorf("%w: %s payload: %v", ErrInvalid, ev.Type, err)
		}
		out, err := json.Marshal(p)
		if err == nil && len(out) > MaxPayload {
			err = fmt.Errorf("%w: payload is larger than %d bytes", ErrInvalid, MaxPayload)
		}
		return out, err
	})
}

// appendBatch writes evs with the payloads payload returns for them.
func (s *Service) appendBatch(ctx context.Context, evs []api.Event, payload func(int, *api.Event) (json.RawMessage, error)) ([]api.Event, error) {
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
		p, err := payload(i, &ev)
		if err != nil {
			return nil, err
		}
		ev.Payload, ev.Time, ev.ID = p, now, ""
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
