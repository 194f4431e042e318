package rtc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/state"
)

// agentRecord is an agent's presence as the state seam keeps it, with a
// TTL of PresenceTTL renewed by heartbeats: an agent whose console
// vanished drops out of routing by itself.
type agentRecord struct {
	Status    api.AgentStatus `json:"status"`
	Skills    []string        `json:"skills"`
	IdleSince time.Time       `json:"idle_since,omitzero"`
	// Call is the call ringing or connected to the agent.
	Call string `json:"call,omitempty"`
}

func (a *agentRecord) api(id string) api.Agent {
	return api.Agent{ID: id, Status: a.Status, Skills: a.Skills, IdleSince: a.IdleSince, Call: a.Call}
}

// skillsOf is the idle indexes an agent is routed from.
func skillsOf(u User) []string {
	if len(u.Skills) == 0 {
		return []string{anySkill}
	}
	sk := slices.Clone(u.Skills)
	slices.Sort(sk)
	return slices.Compact(sk)
}

// SetStatus sets an agent's availability. An available agent without a
// call joins the idle indexes of its skills, keeping its idle-since time
// if it was already available, so longest-idle stays fair.
func (s *Service) SetStatus(ctx context.Context, u User, status api.AgentStatus) (api.Agent, error) {
	if u.Role != auth.RoleAgent {
		return api.Agent{}, fmt.Errorf("%w: only agents have an availability", ErrForbidden)
	}
	if status != api.AgentAvailable && status != api.AgentBusy && status != api.AgentAway {
		return api.Agent{}, fmt.Errorf("%w: status must be available, busy or away", ErrInvalid)
	}
	now := s.now().UTC()
	skills := skillsOf(u)
	fresh := agentRecord{Status: status, Skills: skills}
	if status == api.AgentAvailable {
		fresh.IdleSince = now
	}
	raw, _ := json.Marshal(fresh)
	if ok, err := s.st.SetNX(ctx, keyAgent(u.ID), raw, s.cfg.PresenceTTL); err != nil {
		return api.Agent{}, err
	} else if ok {
		s.indexAgent(ctx, u.ID, &fresh)
		return fresh.api(u.ID), nil
	}
	var ringing string
	rec, err := update(ctx, s.st, keyAgent(u.ID), s.cfg.PresenceTTL, func(a *agentRecord) error {
		ringing = ""
		if status == api.AgentAvailable && a.Status != api.AgentAvailable {
			a.IdleSince = now
		}
		if status != api.AgentAvailable && a.Call != "" {
			ringing = a.Call
		}
		a.Status, a.Skills = status, skills
		return nil
	})
	if errors.Is(err, state.ErrNotFound) {
		return s.SetStatus(ctx, u, status) // expired between the two steps
	} else if err != nil {
		return api.Agent{}, err
	}
	s.indexAgent(ctx, u.ID, &rec)
	if ringing != "" {
		// Going away while rung is a decline; while on a call it changes
		// nothing for the call.
		_ = s.Decline(ctx, u, ringing)
	}
	return rec.api(u.ID), nil
}

// indexAgent puts the agent in or out of its skills' idle indexes.
func (s *Service) indexAgent(ctx context.Context, id string, a *agentRecord) {
	for _, sk := range a.Skills {
		var err error
		if a.Status == api.AgentAvailable && a.Call == "" {
			err = s.st.ZAdd(ctx, ixIdle(sk), id, ms(a.IdleSince))
		} else {
			_, err = s.st.ZRem(ctx, ixIdle(sk), id)
		}
		if err != nil {
			s.log.Warn("index agent", "agent", id, "err", err)
		}
	}
	if a.Status == api.AgentAvailable {
		s.kickRoute()
	}
}

// Agent returns an agent's presence; an agent never seen (or expired) is
// away.
func (s *Service) Agent(ctx context.Context, id string) (api.Agent, error) {
	raw, err := s.st.Get(ctx, keyAgent(id))
	if errors.Is(err, state.ErrNotFound) {
		return api.Agent{ID: id, Status: api.AgentAway}, nil
	} else if err != nil {
		return api.Agent{}, err
	}
	var a agentRecord
	if err := json.Unmarshal(raw, &a); err != nil {
		return api.Agent{}, err
	}
	return a.api(id), nil
}

// Heartbeat renews an agent's presence for another PresenceTTL.
func (s *Service) Heartbeat(ctx context.Context, id string) error {
	raw, err := s.st.Get(ctx, keyAgent(id))
	if errors.Is(err, state.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	_, err = s.st.CompareAndSwap(ctx, keyAgent(id), raw, raw, s.cfg.PresenceTTL)
	return err
}

// How an agent is freed from a call.
type freeMode int

const (
	freeEnded    freeMode = iota // the call ended: idle from now
	freeDeclined                 // declined a ring: keeps its place in line
	freeNoAnswer                 // the ring timed out: set away ("redirect on no answer": not at the desk)
)

// freeAgent clears the agent's call (if it is still call) and puts it back
// in line as mode says.
func (s *Service) freeAgent(ctx context.Context, id, call string, mode freeMode) {
	rec, err := update(ctx, s.st, keyAgent(id), s.cfg.PresenceTTL, func(a *agentRecord) error {
		if a.Call != call {
			return errSkip
		}
		a.Call = ""
		switch {
		case mode == freeNoAnswer:
			a.Status = api.AgentAway
		case mode == freeEnded || a.IdleSince.IsZero():
			a.IdleSince = s.now().UTC()
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, errSkip) && !errors.Is(err, state.ErrNotFound) {
			s.log.Warn("free agent", "agent", id, "err", err)
		}
		return
	}
	s.indexAgent(ctx, id, &rec)
	a := rec.api(id)
	s.hub.toUser(ctx, id, api.Signal{Type: api.SigStatus, Agent: &a})
}

var errSkip = errors.New("rtc: skip")
