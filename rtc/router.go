package rtc

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/state"
)

const (
	// routeBatch bounds the waiting calls one routing pass looks at; the
	// rest wait for the next pass (RoutePoll later).
	routeBatch = 200
	// candidateBatch bounds the idle agents considered per call and index.
	candidateBatch = 50
)

// route rings the longest-idle available agent for each waiting call, in
// order of arrival. One node routes at a time (a lock on the seam), so two
// nodes never ring two agents for one call; claims on the agent and the
// call (compare-and-swap) keep it right even if the lock expired.
func (s *Service) route(ctx context.Context) error {
	ok, err := s.st.SetNX(ctx, keyRouteLock, []byte(s.cfg.Node), routeLockTTL)
	if err != nil || !ok {
		return err
	}
	defer s.st.CompareAndDelete(context.WithoutCancel(ctx), keyRouteLock, []byte(s.cfg.Node))
	waiting, err := s.st.ZRange(ctx, ixWaiting, state.RangeOptions{Min: math.Inf(-1), Max: math.Inf(1), Limit: routeBatch})
	if err != nil {
		return err
	}
	noAgents := map[string]bool{} // skills found without a free agent this pass
	for _, w := range waiting {
		rec, err := s.load(ctx, w.Member)
		if errors.Is(err, ErrNotFound) {
			_, _ = s.st.ZRem(ctx, ixWaiting, w.Member)
			continue
		} else if err != nil {
			return err
		}
		if rec.State != api.CallQueued {
			_, _ = s.st.ZRem(ctx, ixWaiting, w.Member)
			continue
		}
		if noAgents[rec.Skill] {
			continue
		}
		rung, err := s.ringNext(ctx, rec)
		if err != nil {
			return err
		}
		if !rung {
			noAgents[rec.Skill] = true
		}
	}
	return nil
}

// ringNext rings the longest-idle agent for rec that has not just turned
// it down, and reports whether it rang one.
func (s *Service) ringNext(ctx context.Context, rec *callRecord) (bool, error) {
	var cands []state.ScoredMember
	for _, ix := range []string{ixIdle(rec.Skill), ixIdle(anySkill)} {
		ms, err := s.st.ZRange(ctx, ix, state.RangeOptions{Min: math.Inf(-1), Max: math.Inf(1), Limit: candidateBatch})
		if err != nil {
			return false, err
		}
		cands = append(cands, ms...)
	}
	slices.SortStableFunc(cands, func(a, b state.ScoredMember) int {
		switch {
		case a.Score < b.Score:
			return -1
		case a.Score > b.Score:
			return 1
		}
		return 0
	})
	now := s.now()
	for _, c := range cands {
		if until, ok := rec.Tried[c.Member]; ok && now.UnixMilli() < until {
			continue
		}
		claimed, err := s.claimAgent(ctx, c.Member, rec.ID, rec.Skill)
		if err != nil {
			return false, err
		}
		if !claimed {
			continue
		}
		deadline := now.Add(s.cfg.RingTimeout)
		rung, err := update(ctx, s.st, keyCall(rec.ID), 0, func(r *callRecord) error {
			if r.State != api.CallQueued {
				return errSkip
			}
			r.State, r.Agent, r.RingDeadline = api.CallRinging, c.Member, deadline.UTC()
			return nil
		})
		if err != nil {
			s.freeAgent(ctx, c.Member, rec.ID, freeDeclined)
			if errors.Is(err, errSkip) {
				return true, nil // abandoned meanwhile: nothing to ring
			}
			return false, err
		}
		if err := s.st.ZAdd(ctx, ixRinging, rec.ID, ms(deadline)); err != nil {
			return false, err
		}
		_, _ = s.st.ZRem(ctx, ixWaiting, rec.ID)
		c := rung.Call
		s.hub.toUser(ctx, rung.Agent, api.Signal{Type: api.SigRing, CallID: rec.ID, Call: &c})
		s.hub.toUser(ctx, rung.Caller, api.Signal{Type: api.SigCall, CallID: rec.ID, Call: &c})
		return true, nil
	}
	return false, nil
}

// claimAgent marks an available agent as rung for call; of concurrent
// claims one wins. An agent whose presence expired leaves the indexes.
func (s *Service) claimAgent(ctx context.Context, id, call, skill string) (bool, error) {
	rec, err := update(ctx, s.st, keyAgent(id), s.cfg.PresenceTTL, func(a *agentRecord) error {
		if a.Status != api.AgentAvailable || a.Call != "" {
			return errSkip
		}
		a.Call = call
		return nil
	})
	switch {
	case errors.Is(err, state.ErrNotFound), errors.Is(err, errSkip):
		s.dropIdle(ctx, id, skill)
		return false, nil
	case err != nil:
		return false, err
	}
	for _, sk := range rec.Skills {
		_, _ = s.st.ZRem(ctx, ixIdle(sk), id)
	}
	return true, nil
}

// dropIdle removes a stale agent from the idle indexes routing looked in.
// The agent's skills are unknown once its presence expired, so it is
// removed lazily from whichever index it is found in next.
func (s *Service) dropIdle(ctx context.Context, id, skill string) {
	raw, err := s.Agent(ctx, id)
	if err != nil {
		return
	}
	if raw.Status == api.AgentAvailable && raw.Call == "" {
		return
	}
	for _, sk := range append(raw.Skills, anySkill, skill) {
		_, _ = s.st.ZRem(ctx, ixIdle(sk), id)
	}
}

// Answer accepts the call ringing u: the call connects (call_started) and
// u may join its media. A call ringing someone else is refused.
func (s *Service) Answer(ctx context.Context, u User, id string) (api.Call, error) {
	if u.Role != auth.RoleAgent {
		return api.Call{}, fmt.Errorf("%w: only agents answer calls", ErrForbidden)
	}
	rec, err := update(ctx, s.st, keyCall(id), 0, func(r *callRecord) error {
		if r.State != api.CallRinging || r.Agent != u.ID {
			return fmt.Errorf("%w: this call is not ringing you", ErrConflict)
		}
		r.State, r.AnsweredAt, r.RingDeadline = api.CallActive, s.now().UTC(), timeZero
		return nil
	})
	if errors.Is(err, state.ErrNotFound) {
		return api.Call{}, ErrNotFound
	} else if err != nil {
		return api.Call{}, err
	}
	_, _ = s.st.ZRem(ctx, ixRinging, id)
	_, _ = s.st.ZRem(ctx, ixQueue(rec.Skill), id)
	if err := s.st.ZAdd(ctx, ixActive, id, ms(rec.AnsweredAt)); err != nil {
		s.log.Warn("active call not indexed: it is not adopted if its node dies", "call", id, "err", err)
	}
	s.event(ctx, &rec, api.EventCallStarted, actorOf(u), api.CallPayload{CallID: id, Media: rec.Media, Skill: rec.Skill, Agent: u.ID})
	c := rec.Call
	s.hub.toUser(ctx, rec.Caller, api.Signal{Type: api.SigCall, CallID: id, Call: &c})
	return c, nil
}

// Decline turns down the call ringing u; it rings the next agent.
func (s *Service) Decline(ctx context.Context, u User, id string) error {
	return s.moveOn(ctx, id, u.ID, freeDeclined)
}

// moveOn puts a call that rang agent back at the front of its queue (it
// keeps its arrival time) and frees the agent as mode says.
func (s *Service) moveOn(ctx context.Context, id, agent string, mode freeMode) error {
	rec, err := update(ctx, s.st, keyCall(id), 0, func(r *callRecord) error {
		if r.State != api.CallRinging || r.Agent != agent {
			return fmt.Errorf("%w: this call is not ringing you", ErrConflict)
		}
		if r.Tried == nil {
			r.Tried = map[string]int64{}
		}
		if len(r.Tried) >= maxTried {
			clear(r.Tried)
		}
		// Not rung for this call again for a few ring cycles: others first.
		r.Tried[agent] = s.now().Add(3 * s.cfg.RingTimeout).UnixMilli()
		r.State, r.Agent, r.RingDeadline = api.CallQueued, "", timeZero
		return nil
	})
	if errors.Is(err, state.ErrNotFound) {
		return ErrNotFound
	} else if err != nil {
		return err
	}
	_, _ = s.st.ZRem(ctx, ixRinging, id)
	if err := s.st.ZAdd(ctx, ixWaiting, id, ms(rec.CreatedAt)); err != nil {
		return err
	}
	s.freeAgent(ctx, agent, id, mode)
	s.hub.toUser(ctx, agent, api.Signal{Type: api.SigRingEnd, CallID: id})
	c := rec.Call
	s.hub.toUser(ctx, rec.Caller, api.Signal{Type: api.SigCall, CallID: id, Call: &c})
	s.kickRoute()
	return nil
}

// maxTried bounds the agents remembered as having turned one call down.
const maxTried = 64

// expireRings moves on from every ring past its deadline.
func (s *Service) expireRings(ctx context.Context) error {
	due, err := s.st.ZRange(ctx, ixRinging, state.RangeOptions{Min: math.Inf(-1), Max: ms(s.now()), Limit: routeBatch})
	if err != nil {
		return err
	}
	for _, d := range due {
		rec, err := s.load(ctx, d.Member)
		if err != nil || rec.State != api.CallRinging {
			_, _ = s.st.ZRem(ctx, ixRinging, d.Member)
			continue
		}
		if err := s.moveOn(ctx, rec.ID, rec.Agent, freeNoAnswer); err != nil && !errors.Is(err, ErrConflict) {
			return err
		}
	}
	return nil
}
