package rtc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/internal/tokenbucket"
	"github.com/switchboard/switchboard/state"
)

const (
	// SessionQueue bounds the signals waiting to be written to one
	// connection. A client that does not read them is cut off (as
	// centrifuge does) rather than let its queue grow.
	SessionQueue = 256
	// DefaultSignalRate and DefaultSignalBurst bound what one connection
	// may send: a call set-up is an offer, a handful of trickled
	// candidates (browsers gather 5-20) and a few control messages, so a
	// burst of 60 and 20 a second leave room for ICE restarts while
	// cutting off a flood.
	DefaultSignalRate  = 20
	DefaultSignalBurst = 60
	// maxJoined bounds the calls one connection may join: a console holds
	// one call and perhaps a supervised one.
	maxJoined = 4
)

// Envelope kinds on the pub/sub channels.
const (
	kindUser    = "user"    // deliver Signal to every session of User
	kindDeliver = "deliver" // deliver Signal to session To on this node
	kindSig     = "sig"     // a media signal for the room of CallID on this node
	kindEnd     = "end"     // the call ended: close its room
)

// addr is where a session lives.
type addr struct {
	Node    string `json:"n"`
	Session string `json:"s"`
}

// envelope is one message between nodes.
type envelope struct {
	Kind   string      `json:"k"`
	User   string      `json:"u,omitempty"`
	To     string      `json:"to,omitempty"`
	From   *addr       `json:"from,omitempty"`
	Sender string      `json:"sender,omitempty"`
	Role   partyRole   `json:"role,omitempty"`
	CallID string      `json:"call,omitempty"`
	Signal *api.Signal `json:"sig,omitempty"`
}

// Hub holds this node's signaling sessions and carries signals between
// sessions, rooms and other nodes.
type Hub struct {
	svc      *Service
	mu       sync.Mutex
	sessions map[string]*Session
	byUser   map[string]map[*Session]struct{}
	closed   bool
}

func newHub(s *Service) *Hub {
	return &Hub{svc: s, sessions: map[string]*Session{}, byUser: map[string]map[*Session]struct{}{}}
}

// Session is one signaling connection. The gateway writes what Out
// delivers, feeds what the client sends to Handle, calls Tick now and
// then, and Close when the connection ends.
type Session struct {
	hub    *Hub
	id     string
	user   User
	out    chan api.Signal
	done   chan struct{}
	once   sync.Once
	mu     sync.Mutex
	joined map[string]partyRole // call -> how this session joined it
	rate   tokenbucket.Bucket   // under mu
}

// ErrSlowConsumer ends a session whose client does not read its signals.
var ErrSlowConsumer = errors.New("rtc: slow consumer")

// Open starts a session for u.
func (h *Hub) Open(u User) (*Session, error) {
	s := &Session{hub: h, id: newID("ses_"), user: u, out: make(chan api.Signal, SessionQueue),
		done: make(chan struct{}), joined: map[string]partyRole{},
		rate: tokenbucket.New(h.svc.cfg.SignalBurst, h.svc.cfg.SignalRate, time.Now())}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrNoMedia
	}
	h.sessions[s.id] = s
	if h.byUser[u.ID] == nil {
		h.byUser[u.ID] = map[*Session]struct{}{}
	}
	h.byUser[u.ID][s] = struct{}{}
	return s, nil
}

// Sessions counts this node's open sessions.
func (h *Hub) Sessions() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions)
}

// Out delivers the signals to write to the client.
func (s *Session) Out() <-chan api.Signal { return s.out }

// Done is closed when the hub ended the session (slow consumer, shutdown).
func (s *Session) Done() <-chan struct{} { return s.done }

// ID names the session.
func (s *Session) ID() string { return s.id }

func (s *Session) send(sig api.Signal) {
	select {
	case <-s.done:
	case s.out <- sig:
	default:
		s.hub.svc.log.Warn("signaling session cut off: slow consumer", "session", s.id)
		s.end()
	}
}

func (s *Session) end() { s.once.Do(func() { close(s.done) }) }

// Close ends the session: it leaves the calls it joined (their media keeps
// going, so a party can reconnect), and an agent with no other session on
// this node and no call goes away.
func (s *Session) Close() {
	s.end()
	h := s.hub
	h.mu.Lock()
	delete(h.sessions, s.id)
	others := 0
	if m := h.byUser[s.user.ID]; m != nil {
		delete(m, s)
		others = len(m)
		if others == 0 {
			delete(h.byUser, s.user.ID)
		}
	}
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.mu.Lock()
	joined := make(map[string]partyRole, len(s.joined))
	for k, v := range s.joined {
		joined[k] = v
	}
	s.mu.Unlock()
	for call := range joined {
		if rec, err := h.svc.load(ctx, call); err == nil {
			h.toNode(ctx, rec.Node, envelope{Kind: kindSig, CallID: call, From: &addr{h.svc.cfg.Node, s.id},
				Sender: s.user.ID, Signal: &api.Signal{Type: sigLeave, CallID: call}})
		}
	}
	if s.user.Role == auth.RoleAgent && others == 0 {
		if a, err := h.svc.Agent(ctx, s.user.ID); err == nil && a.Status == api.AgentAvailable && a.Call == "" {
			_, _ = h.svc.SetStatus(ctx, s.user, api.AgentAway)
		}
	}
}

// sigLeave is internal: a session that had joined a call closed.
const sigLeave api.SignalType = "leave"

// Tick renews an agent's presence; the gateway calls it on every ping.
func (s *Session) Tick(ctx context.Context) {
	if s.user.Role == auth.RoleAgent {
		if err := s.hub.svc.Heartbeat(ctx, s.user.ID); err != nil {
			s.hub.svc.log.Warn("presence heartbeat", "agent", s.user.ID, "err", err)
		}
	}
}

// Allow takes one message from the session's token bucket and reports
// whether the client is within SignalRate.
func (s *Session) Allow(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rate.Allow(now)
}

// Handle acts on one message from the client. An error refuses that
// message (the gateway answers with an "error" signal); ErrRateLimited
// means the connection must close.
func (s *Session) Handle(ctx context.Context, sig api.Signal) error {
	if !s.Allow(time.Now()) {
		return ErrRateLimited
	}
	svc := s.hub.svc
	switch sig.Type {
	case api.SigPing:
		s.Tick(ctx)
		s.send(api.Signal{Type: api.SigPong})
		return nil
	case api.SigStatus:
		a, err := svc.SetStatus(ctx, s.user, sig.Status)
		if err != nil {
			return err
		}
		s.send(api.Signal{Type: api.SigStatus, Agent: &a})
		return nil
	case api.SigAnswer:
		c, err := svc.Answer(ctx, s.user, sig.CallID)
		if err != nil {
			return err
		}
		s.send(api.Signal{Type: api.SigCall, CallID: c.ID, Call: &c})
		return nil
	case api.SigDecline:
		return svc.Decline(ctx, s.user, sig.CallID)
	case api.SigHangUp:
		_, err := svc.End(ctx, s.user, sig.CallID)
		return err
	case api.SigJoin:
		return s.join(ctx, sig)
	case api.SigOffer, api.SigCandidate, api.SigMute:
		return s.media(ctx, sig)
	}
	return fmt.Errorf("%w: unknown signal type", ErrInvalid)
}

func (s *Session) join(ctx context.Context, sig api.Signal) error {
	svc := s.hub.svc
	rec, err := svc.load(ctx, sig.CallID)
	if err != nil {
		return err
	}
	role, err := mayJoin(s.user, rec, sig.Listen)
	if err != nil {
		return err
	}
	s.mu.Lock()
	_, again := s.joined[rec.ID]
	full := !again && len(s.joined) >= maxJoined
	s.mu.Unlock()
	if full {
		s.forgetEnded(ctx)
	}
	s.mu.Lock()
	if _, ok := s.joined[rec.ID]; !ok && len(s.joined) >= maxJoined {
		s.mu.Unlock()
		return fmt.Errorf("%w: a connection joins at most %d calls at once", ErrInvalid, maxJoined)
	}
	s.joined[rec.ID] = role
	s.mu.Unlock()
	node, err := svc.mediaNode(ctx, rec)
	if err != nil {
		return err
	}
	s.hub.toNode(ctx, node, envelope{Kind: kindSig, CallID: rec.ID, From: &addr{svc.cfg.Node, s.id},
		Sender: s.user.ID, Role: role, Signal: &sig})
	return nil
}

func (s *Session) media(ctx context.Context, sig api.Signal) error {
	s.mu.Lock()
	role, ok := s.joined[sig.CallID]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: join the call first", ErrNotFound)
	}
	switch sig.Type {
	case api.SigOffer:
		if err := ValidateOffer(sig.SDP); err != nil {
			return err
		}
	case api.SigCandidate:
		if sig.Candidate == nil || len(sig.Candidate.Candidate) > maxCandidate {
			return fmt.Errorf("%w: a candidate is required and at most %d bytes", ErrInvalid, maxCandidate)
		}
	case api.SigMute:
		if sig.Mute == nil {
			return fmt.Errorf("%w: mute needs the mute state", ErrInvalid)
		}
	}
	rec, err := s.hub.svc.load(ctx, sig.CallID)
	if err != nil {
		return err
	}
	if rec.ended() {
		return fmt.Errorf("%w: the call has ended", ErrConflict)
	}
	node, err := s.hub.svc.mediaNode(ctx, rec)
	if err != nil {
		return err
	}
	s.hub.toNode(ctx, node, envelope{Kind: kindSig, CallID: rec.ID, From: &addr{s.hub.svc.cfg.Node, s.id},
		Sender: s.user.ID, Role: role, Signal: &sig})
	return nil
}

// forgetEnded drops the calls that ended from what the session joined.
func (s *Session) forgetEnded(ctx context.Context) {
	s.mu.Lock()
	ids := make([]string, 0, len(s.joined))
	for id := range s.joined {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		if rec, err := s.hub.svc.load(ctx, id); err != nil || rec.ended() {
			s.mu.Lock()
			delete(s.joined, id)
			s.mu.Unlock()
		}
	}
}

// maxCandidate bounds one candidate line; real ones are under 200 bytes.
const maxCandidate = 1024

// toUser sends sig to every session of user on every node.
func (h *Hub) toUser(ctx context.Context, user string, sig api.Signal) {
	h.publish(ctx, chUsers, envelope{Kind: kindUser, User: user, Signal: &sig})
}

// deliver sends sig to the session at a.
func (h *Hub) deliver(ctx context.Context, a addr, sig api.Signal) {
	if a.Node == h.svc.cfg.Node {
		h.local(a.Session, sig)
		return
	}
	h.publish(ctx, chNode(a.Node), envelope{Kind: kindDeliver, To: a.Session, Signal: &sig})
}

// toNode hands env to node's rooms: directly when it is this node.
func (h *Hub) toNode(ctx context.Context, node string, env envelope) {
	if node == h.svc.cfg.Node {
		h.svc.relay.dispatch(env)
		return
	}
	h.publish(ctx, chNode(node), env)
}

func (h *Hub) publish(ctx context.Context, ch string, env envelope) {
	raw, err := json.Marshal(env)
	if err == nil {
		err = h.svc.st.Publish(context.WithoutCancel(ctx), ch, raw)
	}
	if err != nil {
		h.svc.log.Warn("signal not published", "channel", ch, "err", err)
	}
}

func (h *Hub) local(session string, sig api.Signal) {
	h.mu.Lock()
	s := h.sessions[session]
	h.mu.Unlock()
	if s != nil {
		s.send(sig)
	}
}

// onMessage handles one pub/sub message for this node.
func (h *Hub) onMessage(ctx context.Context, m state.Message) {
	var env envelope
	if err := json.Unmarshal(m.Payload, &env); err != nil || env.Signal == nil && env.Kind != kindEnd {
		h.svc.log.Warn("bad signaling envelope", "channel", m.Channel)
		return
	}
	switch env.Kind {
	case kindUser:
		h.mu.Lock()
		var to []*Session
		for s := range h.byUser[env.User] {
			to = append(to, s)
		}
		h.mu.Unlock()
		for _, s := range to {
			s.send(*env.Signal)
		}
	case kindDeliver:
		h.local(env.To, *env.Signal)
	case kindSig, kindEnd:
		h.svc.relay.dispatch(env)
	}
}

// closeAll ends every session (shutdown): clients reconnect elsewhere.
func (h *Hub) closeAll() {
	h.mu.Lock()
	h.closed = true
	all := make([]*Session, 0, len(h.sessions))
	for _, s := range h.sessions {
		all = append(all, s)
	}
	h.mu.Unlock()
	for _, s := range all {
		s.end()
	}
}
