package ticket

import (
	"context"
	"errors"
	"time"

	"github.com/switchboard/switchboard/state"
)

const (
	projectorGroup = "projector"
	// projectorBatch is how many events one read takes; projection is a
	// few index writes each, so a batch is a few milliseconds of work.
	projectorBatch = 256
	// projectorClaimIdle is how long an entry may sit with a consumer
	// before another node takes it over: far above a batch's work, so a
	// live node's entries are never stolen.
	projectorClaimIdle = 30 * time.Second
)

// RunProjector makes sure every event in the stream is in its timelines,
// finishing what a node that crashed between XAdd and projection left
// undone. Append already projects, so on a healthy system this only
// confirms (one index read per event). consumer names this node in the
// consumer group; it returns when ctx ends.
func (s *Service) RunProjector(ctx context.Context, consumer string) error {
	if err := s.st.XGroupCreate(ctx, StreamEvents, projectorGroup, "0"); err != nil {
		return err
	}
	lastClaim := time.Time{}
	for ctx.Err() == nil {
		var es []state.Entry
		var err error
		if time.Since(lastClaim) > projectorClaimIdle {
			lastClaim = time.Now()
			es, err = s.st.XAutoClaim(ctx, StreamEvents, projectorGroup, consumer, projectorClaimIdle, projectorBatch)
		}
		if err == nil && len(es) == 0 {
			es, err = s.st.XReadGroup(ctx, StreamEvents, projectorGroup, consumer, projectorBatch, 5*time.Second)
		}
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, state.ErrClosed) {
				return nil
			}
			s.log.Warn("projector read", "err", err)
			sleepCtx(ctx, time.Second)
			continue
		}
		s.ensureProjected(ctx, es)
	}
	return nil
}

// ensureProjected projects entries that are missing from their timeline
// and acknowledges the ones that are done.
func (s *Service) ensureProjected(ctx context.Context, es []state.Entry) {
	done := make([]string, 0, len(es))
	for _, e := range es {
		ev, err := decodeEvent(e)
		if err != nil {
			s.log.Error("projector: undecodable event, skipped", "id", e.ID, "err", err)
			done = append(done, e.ID)
			continue
		}
		// The customer timeline is written after the ticket's, so an
		// event found there is in both.
		ix := ixCustomerTL(ev.CustomerID)
		m, _, err := member(ev.ID)
		if err != nil {
			done = append(done, e.ID)
			continue
		}
		if _, err := s.st.ZScore(ctx, ix, m); err == nil {
			done = append(done, e.ID)
			continue
		}
		if err := s.project(ctx, ev); err != nil {
			s.log.Warn("projector: will retry", "id", e.ID, "err", err)
			continue // left pending: reclaimed later
		}
		done = append(done, e.ID)
	}
	if len(done) > 0 {
		if err := s.st.XAck(ctx, StreamEvents, projectorGroup, done...); err != nil {
			s.log.Warn("projector ack", "err", err)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
