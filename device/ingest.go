package device

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/ticket"
)

// MaxBatch is the most frames one relayed batch may carry; it is the
// ticket stream's batch bound, one stream write.
const MaxBatch = ticket.MaxBatch

// liveFrames is how many recent frames the live view keeps per appliance:
// about an hour at one frame a minute.
const liveFrames = 64

func keyLive(id string) string { return "dev:live:" + id }

// Relay ingests a batch of signed frames the owner's phone relays for the
// appliance with id. The caller must be a relay token of that appliance
// issued to its current owner (else ErrNotFound).
func (s *Service) Relay(ctx context.Context, c Caller, id string, frames []api.SignedFrame) (api.DiagnosticsResult, error) {
	if c.Role != auth.RoleDevice {
		return api.DiagnosticsResult{}, fmt.Errorf("%w: frames are relayed with the appliance's relay token", ErrForbidden)
	}
	a, o, err := s.owned(ctx, c, id)
	if err != nil {
		return api.DiagnosticsResult{}, err
	}
	if len(frames) == 0 || len(frames) > MaxBatch {
		return api.DiagnosticsResult{}, fmt.Errorf("%w: frames must hold 1 to %d entries", ErrInvalid, MaxBatch)
	}
	return s.ingest(ctx, a, o, frames, api.Actor{ID: o.CustomerID, Role: string(auth.RoleCustomer)})
}

// verify checks every frame of a batch, or fails it whole; frames repeated
// within the batch are dropped, and the rest sorted by sequence number.
func (s *Service) verify(a *appliance, frames []api.SignedFrame) ([]api.Frame, int, error) {
	ranges := s.rules.Ranges[a.Model]
	now := s.now()
	out := make([]api.Frame, 0, len(frames))
	for i, sf := range frames {
		f, err := parseFrame(i, a.secret, a.Serial, sf, ranges, now)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, f)
	}
	slices.SortStableFunc(out, func(x, y api.Frame) int {
		switch {
		case x.Seq < y.Seq:
			return -1
		case x.Seq > y.Seq:
			return 1
		}
		return 0
	})
	n := len(out)
	out = slices.CompactFunc(out, func(x, y api.Frame) bool { return x.Seq == y.Seq })
	return out, n - len(out), nil
}

// ingest verifies a batch of one appliance, drops what was already
// received, writes the rest as diagnostic events in sequence order, and
// acts on their faults.
//
// Ordering of the writes: the events are appended first and the sequence
// window marked after, under a per-appliance lock on this node. A node
// that dies between the two has written events whose frames will come
// again (the phone retries, MQTT redelivers), so a crash can duplicate a
// frame but never lose one; consumers can tell by (serial, seq).
func (s *Service) ingest(ctx context.Context, a *appliance, o *owner, frames []api.SignedFrame, actor api.Actor) (api.DiagnosticsResult, error) {
	fs, dups, err := s.verify(a, frames)
	if err != nil {
		return api.DiagnosticsResult{}, err
	}
	return s.record(ctx, a, o, fs, dups, actor)
}

// record writes verified frames (sorted by seq, distinct) of a.
func (s *Service) record(ctx context.Context, a *appliance, o *owner, fs []api.Frame, dups int, actor api.Actor) (api.DiagnosticsResult, error) {
	mu := s.lockFor(a.ID)
	mu.Lock()
	defer mu.Unlock()
	w, raw, err := s.readWindow(ctx, a.ID)
	if err != nil {
		return api.DiagnosticsResult{}, err
	}
	fresh := fs[:0:0]
	for _, f := range fs {
		if w.seen(f.Seq) {
			dups++
			continue
		}
		fresh = append(fresh, f)
	}
	if len(fresh) == 0 {
		return api.DiagnosticsResult{Duplicates: dups}, ErrReplayed
	}
	tk, err := s.ticketFor(ctx, a, o, fresh)
	if err != nil {
		return api.DiagnosticsResult{}, err
	}
	evs := make([]api.Event, len(fresh))
	seqs := make([]uint64, len(fresh))
	payloads := make([]api.DiagnosticPayload, len(fresh))
	for i, f := range fresh {
		payloads[i] = api.DiagnosticPayload{ApplianceID: a.ID, Serial: a.Serial, Seq: f.Seq, At: f.At, Readings: f.Readings, FaultCodes: f.FaultCodes}
		p, _ := json.Marshal(payloads[i])
		evs[i] = api.Event{TicketID: tk, CustomerID: o.CustomerID, Type: api.EventDiagnostic, Actor: actor, Channel: api.ChannelAppliance, Payload: p}
		seqs[i] = f.Seq
	}
	if _, err := s.tickets.AppendBatch(ctx, evs); err != nil {
		return api.DiagnosticsResult{}, err
	}
	if err := s.markSeen(ctx, a.ID, w, raw, seqs); err != nil {
		return api.DiagnosticsResult{}, err
	}
	if err := s.remember(ctx, a.ID, payloads); err != nil {
		s.log.Warn("live view not updated", "appliance", a.ID, "err", err)
	}
	for _, f := range fresh {
		for _, code := range f.FaultCodes {
			if err := s.actOn(ctx, a, o, code); err != nil {
				// The diagnostic is recorded; the next frame with the code
				// tries the rule again (the fault marker is set last).
				s.log.Warn("fault rule failed", "appliance", a.ID, "code", code, "err", err)
			}
		}
	}
	return api.DiagnosticsResult{Accepted: len(fresh), Duplicates: dups}, nil
}

// remember keeps the newest liveFrames frames for the live view.
func (s *Service) remember(ctx context.Context, id string, ps []api.DiagnosticPayload) error {
	var cur []api.DiagnosticPayload
	raw, err := s.st.Get(ctx, keyLive(id))
	if err == nil {
		_ = json.Unmarshal(raw, &cur)
	}
	cur = append(cur, ps...)
	slices.SortStableFunc(cur, func(x, y api.DiagnosticPayload) int {
		switch {
		case x.Seq < y.Seq:
			return -1
		case x.Seq > y.Seq:
			return 1
		}
		return 0
	})
	if len(cur) > liveFrames {
		cur = cur[len(cur)-liveFrames:]
	}
	out, _ := json.Marshal(cur)
	return s.st.Set(ctx, keyLive(id), out, 0)
}

// live returns the live view's frames.
func (s *Service) live(ctx context.Context, id string) ([]api.DiagnosticPayload, error) {
	raw, err := s.st.Get(ctx, keyLive(id))
	if err != nil {
		if errors.Is(err, errNotFoundState) {
			return []api.DiagnosticPayload{}, nil
		}
		return nil, err
	}
	var cur []api.DiagnosticPayload
	if err := json.Unmarshal(raw, &cur); err != nil {
		return nil, err
	}
	return cur, nil
}
