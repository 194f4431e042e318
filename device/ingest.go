package device

import (
	"context"
	"encoding/binary"
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
	a, o, err := s.relayer(ctx, c, id)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			s.frames.http.refuse(refusedUnknown, len(frames))
		}
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
	mac := newMACer(a.secret)
	for i, sf := range frames {
		f, err := parseFrame(i, mac, a.Serial, sf, ranges, now)
		if err != nil {
			s.frames.http.refuse(refusalOf(a, sf), len(frames))
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
	res, err := s.record(ctx, a, o, fs, dups, actor)
	s.frames.http.recorded(res, err)
	return res, err
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
	stale := 0
	for _, f := range fs {
		if w.seen(f.Seq) {
			dups++
			if w.hw-f.Seq >= seqWindow {
				stale++
			}
			continue
		}
		fresh = append(fresh, f)
	}
	if stale > 0 {
		// Older than the window: taken as replays. Loud, because a frame
		// this late is either an attack or a relay far behind.
		s.log.Warn("frames older than the sequence window dropped", "appliance", a.ID, "frames", stale, "high_water", w.hw)
	}
	if len(fresh) == 0 {
		return api.DiagnosticsResult{Duplicates: dups}, ErrReplayed
	}
	tk, err := s.ticketFor(ctx, a, o, fresh)
	if err != nil {
		return api.DiagnosticsResult{}, err
	}
	evs := make([]api.Event, len(fresh))
	payloads := make([]api.DiagnosticPayload, len(fresh))
	seqs := make([]uint64, len(fresh))
	for i, f := range fresh {
		payloads[i] = api.DiagnosticPayload{ApplianceID: a.ID, Serial: a.Serial, Seq: f.Seq, At: f.At, Readings: f.Readings, FaultCodes: f.FaultCodes}
		evs[i] = api.Event{TicketID: tk, CustomerID: o.CustomerID, Type: api.EventDiagnostic, Actor: actor, Channel: api.ChannelAppliance}
		seqs[i] = f.Seq
	}
	written, err := ticket.AppendBatchTyped(ctx, s.tickets, evs, payloads)
	if err != nil {
		return api.DiagnosticsResult{}, err
	}
	live := make([]liveEntry, len(written))
	for i, ev := range written {
		live[i] = liveEntry{seq: seqs[i], payload: ev.Payload}
	}
	// The window and the live view are independent writes: issued
	// together, the embedded store commits them in one transaction.
	liveDone := make(chan error, 1)
	go func() { liveDone <- s.remember(ctx, a.ID, live) }()
	err = s.markSeen(ctx, a.ID, w, raw, seqs)
	if lerr := <-liveDone; lerr != nil {
		s.log.Warn("live view not updated", "appliance", a.ID, "err", lerr)
	}
	if err != nil {
		return api.DiagnosticsResult{}, err
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

// remember keeps the newest liveFrames frames for the live view. The
// value is a run of entries (seq, 8 bytes; length, 4 bytes; payload JSON)
// so a batch costs no JSON parsing of the frames already kept.
func (s *Service) remember(ctx context.Context, id string, fresh []liveEntry) error {
	var cur []liveEntry
	if raw, err := s.st.Get(ctx, keyLive(id)); err == nil {
		cur = decodeLive(raw)
	}
	cur = append(cur, fresh...)
	slices.SortStableFunc(cur, func(x, y liveEntry) int { return cmpSeq(x.seq, y.seq) })
	if len(cur) > liveFrames {
		cur = cur[len(cur)-liveFrames:]
	}
	return s.st.Set(ctx, keyLive(id), encodeLive(cur), 0)
}

type liveEntry struct {
	seq     uint64
	payload []byte
}

func encodeLive(es []liveEntry) []byte {
	n := 0
	for _, e := range es {
		n += 12 + len(e.payload)
	}
	out := make([]byte, 0, n)
	for _, e := range es {
		out = binary.BigEndian.AppendUint64(out, e.seq)
		out = binary.BigEndian.AppendUint32(out, uint32(len(e.payload)))
		out = append(out, e.payload...)
	}
	return out
}

// decodeLive reads what encodeLive wrote; a damaged tail is dropped.
func decodeLive(b []byte) []liveEntry {
	var out []liveEntry
	for len(b) >= 12 {
		seq, n := binary.BigEndian.Uint64(b), int(binary.BigEndian.Uint32(b[8:]))
		if len(b) < 12+n {
			break
		}
		out = append(out, liveEntry{seq: seq, payload: b[12 : 12+n]})
		b = b[12+n:]
	}
	return out
}

// live returns the live view's frames, oldest first.
func (s *Service) live(ctx context.Context, id string) ([]api.DiagnosticPayload, error) {
	raw, err := s.st.Get(ctx, keyLive(id))
	if errors.Is(err, errNotFoundState) {
		return []api.DiagnosticPayload{}, nil
	}
	if err != nil {
		return nil, err
	}
	es := decodeLive(raw)
	out := make([]api.DiagnosticPayload, 0, len(es))
	for _, e := range es {
		var p api.DiagnosticPayload
		if json.Unmarshal(e.payload, &p) == nil {
			out = append(out, p)
		}
	}
	return out, nil
}
