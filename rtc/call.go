package rtc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/ticket"
)

// callRecord is a call as the state seam keeps it.
type callRecord struct {
	api.Call
	// Node hosts the call's media.
	Node string `json:"node"`
	// Tried holds agents that declined or let the call ring out, with
	// the time (Unix ms) until which they are not rung for it again.
	Tried map[string]int64 `json:"tried,omitempty"`
	// RingDeadline is when the current ring times out.
	RingDeadline time.Time `json:"ring_deadline,omitzero"`
	// AdoptedAt is when Node took the call over from a node that died
	// (failover.go).
	AdoptedAt time.Time `json:"adopted_at,omitzero"`
	// Watched says Node keeps a liveness key; a call placed by a node
	// too old to keep one (a rolling upgrade) is never taken over.
	Watched bool `json:"watched,omitempty"`
}

func (r *callRecord) ended() bool { return r.State == api.CallEnded || r.State == api.CallMissed }

// skillRE bounds a skill name: a queue-like token, as ticket queues.
var skillRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// Place requests a call for a ticket: the caller is the ticket's customer,
// or a technician on site (field escalation, "see what I see"). The call
// waits in the skill's queue until routing rings an agent.
func (s *Service) Place(ctx context.Context, u User, req api.PlaceCallRequest) (api.Call, error) {
	if u.Role != auth.RoleCustomer && u.Role != auth.RoleTechnician {
		return api.Call{}, fmt.Errorf("%w: only customers and technicians place calls", ErrForbidden)
	}
	if req.Media != api.MediaAudio && req.Media != api.MediaVideo {
		return api.Call{}, fmt.Errorf("%w: media must be audio or video", ErrInvalid)
	}
	if req.Skill != "" && !skillRE.MatchString(req.Skill) {
		return api.Call{}, fmt.Errorf("%w: skill must be 1-64 lowercase letters, digits, '.', '_' or '-'", ErrInvalid)
	}
	t, err := s.tickets.Get(ctx, u.viewer(), req.TicketID)
	if err != nil {
		return api.Call{}, err // someone else's ticket is ticket.ErrNotFound
	}
	if n, err := s.st.ZCard(ctx, ixWaiting); err != nil {
		return api.Call{}, err
	} else if n >= int64(s.cfg.MaxQueue) {
		return api.Call{}, ErrQueueFull
	}
	skill := req.Skill
	if skill == "" {
		skill = t.Queue
	}
	if !skillRE.MatchString(skill) {
		skill = "general"
	}
	now := s.now().UTC()
	rec := callRecord{Call: api.Call{ID: newID("call_"), TicketID: t.ID, CustomerID: t.CustomerID, Caller: u.ID,
		CallerRole: string(u.Role), Media: req.Media, Skill: skill, State: api.CallQueued,
		CreatedAt: now}, Node: s.cfg.Node, Watched: true}
	// Recorded only with the customer's consent, and only on a node that
	// records (Media.RecordDir): a WebM file per party (record.go).
	rec.Recording = req.RecordingConsent && s.cfg.Media.RecordDir != ""
	raw, _ := json.Marshal(rec)
	if err := s.st.Set(ctx, keyCall(rec.ID), raw, 0); err != nil {
		return api.Call{}, err
	}
	if err := s.st.ZAdd(ctx, ixQueue(skill), rec.ID, ms(now)); err != nil {
		return api.Call{}, err
	}
	if err := s.st.ZAdd(ctx, ixWaiting, rec.ID, ms(now)); err != nil {
		return api.Call{}, err
	}
	s.event(ctx, &rec, api.EventCallRequested, actorOf(u), api.CallPayload{CallID: rec.ID, Media: rec.Media, Skill: skill})
	s.kickRoute()
	return s.view(ctx, &rec), nil
}

// Get returns a call to one of its parties or a supervisor.
func (s *Service) Get(ctx context.Context, u User, id string) (api.Call, error) {
	rec, err := s.load(ctx, id)
	if err != nil {
		return api.Call{}, err
	}
	if !s.maySee(u, rec) {
		return api.Call{}, ErrNotFound
	}
	return s.view(ctx, rec), nil
}

func (s *Service) maySee(u User, rec *callRecord) bool {
	switch {
	case u.ID == rec.Caller && string(u.Role) == rec.CallerRole:
		return true
	case u.Role == auth.RoleAgent && u.ID == rec.Agent:
		return true
	case u.Supervisor && (u.Role == auth.RoleAgent || u.Role == auth.RoleAdmin):
		return true
	}
	return false
}

func (s *Service) load(ctx context.Context, id string) (*callRecord, error) {
	if id == "" || len(id) > 64 {
		return nil, ErrNotFound
	}
	raw, err := s.st.Get(ctx, keyCall(id))
	if errors.Is(err, state.ErrNotFound) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, err
	}
	var rec callRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("rtc: decode call: %w", err)
	}
	return &rec, nil
}

// view is the call as clients see it, with the queue position and the
// expected wait while it is queued.
func (s *Service) view(ctx context.Context, rec *callRecord) api.Call {
	c := rec.Call
	if c.State != api.CallQueued && c.State != api.CallRinging {
		return c
	}
	score, err := s.st.ZScore(ctx, ixQueue(c.Skill), c.ID)
	if err != nil {
		return c
	}
	ahead, err := s.st.ZRange(ctx, ixQueue(c.Skill), state.RangeOptions{Min: math.Inf(-1), Max: score, Limit: s.cfg.MaxQueue})
	if err != nil {
		return c
	}
	c.Position = len(ahead)
	free := int64(0)
	for _, ix := range []string{ixIdle(c.Skill), ixIdle(anySkill)} {
		n, _ := s.st.ZCard(ctx, ix)
		free += n
	}
	// Each free agent takes one caller at once; the rest wait about one
	// average handle per turn, shared among the free agents (at least one:
	// somebody comes back).
	turns := float64(c.Position-1) / float64(max(free, 1))
	if c.Position > int(free) {
		c.ExpectedWaitSeconds = int(math.Ceil(max(turns, 1) * s.cfg.AverageHandle.Seconds()))
	}
	return c
}

// End hangs up (an active call) or abandons (a queued or ringing one). Only
// the caller and the answering agent may end a call.
func (s *Service) End(ctx context.Context, u User, id string) (api.Call, error) {
	rec, err := s.load(ctx, id)
	if err != nil {
		return api.Call{}, err
	}
	if !s.maySee(u, rec) {
		return api.Call{}, ErrNotFound
	}
	if u.ID != rec.Caller && u.ID != rec.Agent {
		return api.Call{}, fmt.Errorf("%w: a listening supervisor cannot end the call", ErrForbidden)
	}
	reason := ""
	if rec.State != api.CallActive {
		reason = api.MissAbandoned
	}
	return s.finish(ctx, id, u.ID, reason)
}

// CallBack turns a waiting call into a call-back: the call ends missed
// and a call_back follow-up is scheduled on the ticket for agents.
func (s *Service) CallBack(ctx context.Context, u User, id string, req api.CallBackRequest) (api.Call, api.FollowUp, error) {
	rec, err := s.load(ctx, id)
	if err != nil {
		return api.Call{}, api.FollowUp{}, err
	}
	if u.ID != rec.Caller || string(u.Role) != rec.CallerRole {
		return api.Call{}, api.FollowUp{}, ErrNotFound
	}
	if rec.State != api.CallQueued && rec.State != api.CallRinging {
		return api.Call{}, api.FollowUp{}, fmt.Errorf("%w: only a waiting call can become a call-back", ErrConflict)
	}
	fr := api.FollowUpRequest{At: req.At, Action: api.FollowUpCallBack, Note: req.Note}
	if fr.At.IsZero() {
		fr.At = s.now()
	}
	if fr.Note == "" {
		fr.Note = "call back: the customer asked while waiting for call " + id
	}
	// Checked before the call ends: a follow-up refused after it would
	// leave the customer out of the queue with no call-back.
	if err := s.tickets.CheckFollowUp(fr); err != nil {
		return api.Call{}, api.FollowUp{}, err
	}
	c, err := s.finish(ctx, id, u.ID, api.MissCallBack)
	if err != nil {
		return api.Call{}, api.FollowUp{}, err
	}
	fu, err := s.tickets.ScheduleFollowUp(ctx, ticket.System, rec.TicketID, fr)
	if err != nil {
		return c, api.FollowUp{}, err
	}
	return c, fu, nil
}

// finish moves a call to its end once (compare-and-swap makes exactly one
// caller win), frees the agent, records the event, tells both parties and
// the media node. reason empty means a connected call hung up by by.
func (s *Service) finish(ctx context.Context, id, by, reason string) (api.Call, error) {
	var before callRecord
	rec, err := update(ctx, s.st, keyCall(id), callRetention, func(r *callRecord) error {
		if r.ended() {
			return fmt.Errorf("%w: the call has already ended", ErrConflict)
		}
		before = *r
		r.EndedAt = s.now().UTC()
		if r.State == api.CallActive {
			r.State, r.HungUpBy = api.CallEnded, by
			if reason != "" && reason != api.MissAbandoned {
				r.EndReason = reason
			}
		} else {
			r.State, r.EndReason = api.CallMissed, reason
		}
		return nil
	})
	if err != nil {
		return api.Call{}, err
	}
	s.unindex(ctx, &rec)
	if before.Agent != "" {
		mode := freeDeclined
		if before.State == api.CallActive {
			mode = freeEnded
		}
		s.freeAgent(ctx, before.Agent, id, mode)
	}
	if rec.State == api.CallEnded {
		p := api.CallEndedPayload{CallID: id, DurationSeconds: int(rec.EndedAt.Sub(rec.AnsweredAt).Round(time.Second).Seconds()), HungUpBy: by}
		if rec.Recording {
			p.RecordingNode = rec.Node
		}
		s.event(ctx, &rec, api.EventCallEnded, api.Actor{ID: by, Role: roleOf(&rec, by)}, p)
	} else {
		s.event(ctx, &rec, api.EventCallMissed, api.Actor{ID: by, Role: roleOf(&rec, by)}, api.CallPayload{CallID: id,
			Media: rec.Media, Skill: rec.Skill, Agent: before.Agent, Reason: reason})
	}
	c := rec.Call
	for _, to := range []string{rec.Caller, before.Agent} {
		if to != "" {
			s.hub.toUser(ctx, to, api.Signal{Type: api.SigHangUp, CallID: id, Call: &c})
		}
	}
	s.hub.toNode(ctx, rec.Node, envelope{Kind: kindEnd, CallID: id})
	s.kickRoute()
	return c, nil
}

func (s *Service) unindex(ctx context.Context, rec *callRecord) {
	for _, ix := range []string{ixWaiting, ixQueue(rec.Skill), ixRinging, ixActive} {
		if _, err := s.st.ZRem(ctx, ix, rec.ID); err != nil {
			s.log.Warn("unindex call", "call", rec.ID, "err", err)
		}
	}
}

func roleOf(rec *callRecord, id string) string {
	switch id {
	case rec.Caller:
		return rec.CallerRole
	case rec.Agent:
		return string(auth.RoleAgent)
	case "system", "":
		return string(ticket.RoleSystem)
	}
	return string(auth.RoleAgent)
}

func actorOf(u User) api.Actor { return api.Actor{ID: u.ID, Role: string(u.Role)} }

// event appends a call event to the ticket's stream. A failed append is
// logged, not returned: the call itself already changed, and the stream
// is the record, not the switch.
func (s *Service) event(ctx context.Context, rec *callRecord, typ api.EventType, actor api.Actor, payload any) {
	raw, _ := json.Marshal(payload)
	channel := api.ChannelApp
	if rec.CallerRole == string(auth.RoleTechnician) {
		channel = api.ChannelField
	}
	if actor.Role == string(auth.RoleAgent) {
		channel = api.ChannelConsole
	}
	if _, err := s.tickets.Append(ctx, api.Event{TicketID: rec.TicketID, Type: typ, Actor: actor, Channel: channel, Payload: raw}); err != nil {
		s.log.Error("call event not recorded", "call", rec.ID, "type", typ, "err", err)
	}
}

// mayJoin reports how u may join rec's media: as the caller, as the agent
// who answered, or listen-only as a supervisor.
func mayJoin(u User, rec *callRecord, listen bool) (partyRole, error) {
	switch {
	case rec.ended():
		return 0, fmt.Errorf("%w: the call has ended", ErrConflict)
	case listen:
		if !u.Supervisor || (u.Role != auth.RoleAgent && u.Role != auth.RoleAdmin) {
			return 0, ErrNotFound
		}
		if rec.State != api.CallActive {
			return 0, fmt.Errorf("%w: only a connected call can be listened to", ErrConflict)
		}
		return roleListener, nil
	case u.ID == rec.Caller && string(u.Role) == rec.CallerRole:
		return roleCaller, nil
	case u.Role == auth.RoleAgent && u.ID == rec.Agent && rec.State == api.CallActive:
		return roleAgent, nil
	case u.Role == auth.RoleAgent && slices.Contains([]string{rec.Agent}, u.ID):
		return 0, fmt.Errorf("%w: answer the call before joining it", ErrConflict)
	}
	return 0, ErrNotFound
}
