package ticket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/state"
)

// The live feed: a Hub tails StreamEvents and fans every event out to the
// subscribers of this node. In Redis mode every node tails the same Redis
// Stream, so an event appended on one node reaches subscribers on all of
// them with no pub/sub and no extra copy of the log.
//
// Ordering and resumption: events reach a subscriber in stream (ID)
// order. A subscriber that names the last ID it saw gets every later
// event it may see, once: it registers for live events first (they queue
// in its buffer), then reads the stream from its ID in pages, then hands
// over to the live queue, skipping the live events the catch-up already
// covered (IDs not above the last one read).

// Errors of the live feed. A subscription ends with one of them (or
// ErrInvalid/ErrForbidden at Subscribe); they are here rather than in
// errors.go because only the feed raises them.
var (
	// ErrSlowConsumer: the subscriber fell behind by more than its buffer
	// and was cut off so it cannot hold memory or slow anyone else. It may
	// reconnect with the ID of the last event it received.
	ErrSlowConsumer = errors.New("ticket: slow consumer: reconnect with the last event ID")
	// ErrReplayTooLong: resuming would replay more than MaxReplay events;
	// the client should reload the timeline (REST) and resume from there.
	ErrReplayTooLong = errors.New("ticket: too far behind to replay: reload the timeline, then resume from its last event")
	// ErrHubStopped: the node is shutting down; reconnect (to another node).
	ErrHubStopped = errors.New("ticket: live feed stopped: reconnect")
	// ErrSubscriptionClosed: Close was called.
	ErrSubscriptionClosed = errors.New("ticket: subscription closed")
)

// HubConfig sizes the live feed. Every zero value means the default beside
// the field.
type HubConfig struct {
	// Buffer is how many events may wait for one subscriber. Zero means
	// 1024: about a second of a busy node's whole stream, far more than a
	// console on a working link ever has in flight.
	Buffer int
	// BufferBytes bounds the encoded size of the events waiting for one
	// subscriber. Zero means 4 MiB. With Buffer it is what makes the
	// feed's memory bounded: at most subscribers × BufferBytes of queued
	// events, whatever the clients do.
	BufferBytes int64
	// MaxReplay is the most stream entries a resuming subscriber may have
	// to catch up on (counted before filtering). Zero means 10,000: a few
	// MB read and ~20 ms of work; anyone further behind reloads the
	// timeline, which is paged and indexed.
	MaxReplay int
	// ReadBatch is how many entries the hub reads from the stream at once.
	// Zero means 512.
	ReadBatch int
	// Block is how long one tailing read waits for new entries. Zero means
	// 5s; it only bounds how often an idle hub loops.
	Block time.Duration
	// Logger receives the hub's warnings; nil discards them.
	Logger *slog.Logger
	// Presence, when set, records every open subscription so any node
	// can tell whether a user is live (push skips those); nil records
	// nothing.
	Presence *Presence
}

func (c HubConfig) withDefaults() HubConfig {
	if c.Buffer <= 0 {
		c.Buffer = 1024
	}
	if c.BufferBytes <= 0 {
		c.BufferBytes = 4 << 20
	}
	if c.MaxReplay <= 0 {
		c.MaxReplay = 10_000
	}
	if c.ReadBatch <= 0 {
		c.ReadBatch = 512
	}
	if c.Block <= 0 {
		c.Block = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

const (
	// replayPage is how many entries one catch-up read takes.
	replayPage = 256
	// techCacheSize bounds the hub's ticket → technician cache; it is
	// cleared when full (a miss costs one Get).
	techCacheSize = 10_000
	// readRetry is the pause after a failed tailing read (backend down).
	readRetry = 500 * time.Millisecond
)

// Filter narrows a subscription; empty fields match everything. They only
// narrow: what a viewer may see is decided by the viewer.
type Filter struct {
	Queue    string
	Status   api.TicketStatus
	Customer string
	Ticket   string
}

func (f Filter) check() error {
	for name, v := range map[string]string{"queue": f.Queue, "customer": f.Customer, "ticket": f.Ticket} {
		if err := short(name, v, false); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	if f.Status != "" && !slices.Contains(statuses, f.Status) {
		return fmt.Errorf("%w: status must be open, pending, resolved or closed", ErrInvalid)
	}
	return nil
}

// Frame is one event as the feed delivers it, decoded and encoded once
// and shared by every subscriber that gets it: treat both as read-only.
type Frame struct {
	Event *api.Event
	// JSON is the event as sent on the wire (api.Event, ID included).
	JSON []byte
}

func newFrame(e state.Entry) (*Frame, error) {
	ev, err := decodeEvent(e)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	return &Frame{Event: ev, JSON: b}, nil
}

// Hub fans the event stream out to this node's live subscribers. One
// goroutine, Run, owns the tailing read; Subscribe and Close may be
// called from any goroutine.
type Hub struct {
	svc *Service
	cfg HubConfig
	log *slog.Logger

	mu      sync.Mutex
	stopped bool
	// Each subscription sits in exactly one bucket, the most selective
	// key it has, so an event is matched only against subscriptions that
	// could want it: by ticket, by customer, by queue, or all.
	byTicket, byCustomer, byQueue map[string][]*Subscription
	all                           []*Subscription
	count                         int

	started atomic.Bool
	cutoffs atomic.Uint64
	// techs caches ticket → dispatched technician for technician
	// subscribers; only Run touches it.
	techs map[string]string
	// node tells this hub's connections from other nodes' in presence.
	node string
}

// NewHub returns a hub over svc's stream; call Run to start it.
func NewHub(svc *Service, cfg HubConfig) *Hub {
	cfg = cfg.withDefaults()
	return &Hub{
		svc: svc, cfg: cfg, log: cfg.Logger.With("component", "feed"),
		byTicket: map[string][]*Subscription{}, byCustomer: map[string][]*Subscription{}, byQueue: map[string][]*Subscription{},
		techs: map[string]string{}, node: newID(""),
	}
}

// HubStats is a snapshot of the hub, for metrics and tests.
type HubStats struct {
	Subscribers int
	// SlowConsumers counts subscriptions cut off since start.
	SlowConsumers uint64
}

// Stats returns a snapshot.
func (h *Hub) Stats() HubStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return HubStats{Subscribers: h.count, SlowConsumers: h.cutoffs.Load()}
}

// Run tails the stream from its end and delivers each new event to the
// matching subscribers until ctx ends; then it ends every subscription
// with ErrHubStopped. A backend error is logged and retried, never
// returned: live subscribers see a delay, not a gap, because the hub
// keeps its place in the stream. Run may be called once.
func (h *Hub) Run(ctx context.Context) error {
	if !h.started.CompareAndSwap(false, true) {
		return errors.New("ticket: hub already running")
	}
	defer h.stop()
	cursor := ""
	for cursor == "" {
		last, err := h.svc.st.XRevRange(ctx, StreamEvents, "", 1)
		switch {
		case ctx.Err() != nil || errors.Is(err, state.ErrClosed):
			return nil
		case err != nil:
			h.log.Warn("feed: find stream end", "err", err)
			sleepCtx(ctx, readRetry)
		case len(last) == 0:
			cursor = "0"
		default:
			cursor = last[0].ID
		}
	}
	frames := make([]*Frame, 0, h.cfg.ReadBatch)
	for ctx.Err() == nil {
		es, err := h.svc.st.XRead(ctx, StreamEvents, cursor, h.cfg.ReadBatch, h.cfg.Block)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, state.ErrClosed) {
				return nil
			}
			h.log.Warn("feed: read stream", "err", err)
			sleepCtx(ctx, readRetry)
			continue
		}
		if len(es) == 0 {
			continue
		}
		cursor = es[len(es)-1].ID
		frames = frames[:0]
		for _, e := range es {
			f, err := newFrame(e)
			if err != nil {
				h.log.Error("feed: undecodable event, skipped", "id", e.ID, "err", err)
				continue
			}
			h.learn(f.Event)
			frames = append(frames, f)
		}
		h.fanout(ctx, frames)
	}
	return nil
}

// learn keeps the technician cache in step with dispatches the stream
// itself reports, so a cached ticket never needs re-reading.
func (h *Hub) learn(ev *api.Event) {
	if ev.Type != api.EventStatusChanged || ev.TicketID == "" {
		return
	}
	var p api.StatusChangedPayload
	if json.Unmarshal(ev.Payload, &p) != nil || p.Technician == nil {
		return
	}
	if len(h.techs) >= techCacheSize {
		clear(h.techs)
	}
	h.techs[ev.TicketID] = *p.Technician
}

// technician returns the technician dispatched to ticket, from the cache
// or the ticket record. Only Run calls it.
func (h *Hub) technician(ctx context.Context, ticket string) string {
	if t, ok := h.techs[ticket]; ok {
		return t
	}
	t, _, err := h.svc.loadTicket(ctx, ticket)
	if err != nil {
		return "" // unknown: nobody sees it as theirs
	}
	if len(h.techs) >= techCacheSize {
		clear(h.techs)
	}
	h.techs[ticket] = t.Technician
	return t.Technician
}

func (h *Hub) fanout(ctx context.Context, frames []*Frame) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var cut []*Subscription
	tech := func(ticket string) string { return h.technician(ctx, ticket) }
	for _, f := range frames {
		ev := f.Event
		if ev.TicketID != "" {
			cut = h.offer(h.byTicket[ev.TicketID], f, tech, cut)
		}
		cut = h.offer(h.byCustomer[ev.CustomerID], f, tech, cut)
		if ev.Queue != "" {
			cut = h.offer(h.byQueue[ev.Queue], f, tech, cut)
		}
		cut = h.offer(h.all, f, tech, cut)
		// Cut between events, not at the end of the batch, so a cut
		// subscription gets nothing after the event that overflowed it.
		for _, s := range cut {
			if h.removeLocked(s) {
				h.cutoffs.Add(1)
				s.end(ErrSlowConsumer)
			}
		}
		cut = cut[:0]
	}
}

// offer queues f for the subscriptions in subs that want it, without ever
// waiting: one whose buffer is full is added to cut.
func (h *Hub) offer(subs []*Subscription, f *Frame, tech func(string) string, cut []*Subscription) []*Subscription {
	for _, s := range subs {
		if !s.matches(f.Event, tech) {
			continue
		}
		if s.queued.Add(int64(len(f.JSON))) > h.cfg.BufferBytes {
			cut = append(cut, s)
			continue
		}
		select {
		case s.ch <- f:
		default:
			cut = append(cut, s)
		}
	}
	return cut
}

// stop ends every subscription: the node is going away.
func (h *Hub) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = true
	for _, b := range []map[string][]*Subscription{h.byTicket, h.byCustomer, h.byQueue} {
		for _, subs := range b {
			for _, s := range subs {
				s.end(ErrHubStopped)
			}
		}
		clear(b)
	}
	for _, s := range h.all {
		s.end(ErrHubStopped)
	}
	h.all = nil
	h.count = 0
}

// Check reports whether v may subscribe with f from after, without
// subscribing: the gateway calls it before upgrading to a WebSocket, so
// a bad request gets an HTTP answer.
func (h *Hub) Check(v Viewer, f Filter, after string) error {
	switch v.Role {
	case auth.RoleCustomer, auth.RoleAgent, auth.RoleAdmin, auth.RoleTechnician, RoleSystem:
	default:
		return fmt.Errorf("%w: your role has no live feed", ErrForbidden)
	}
	if v.ID == "" {
		return fmt.Errorf("%w: no subject", ErrForbidden)
	}
	if err := f.check(); err != nil {
		return err
	}
	if after != "" {
		if len(after) > 64 {
			return fmt.Errorf("%w: malformed event ID", ErrInvalid)
		}
		if _, err := state.ParseID(after); err != nil {
			return fmt.Errorf("%w: malformed event ID %q", ErrInvalid, truncate(after, 40))
		}
	}
	return nil
}

// Subscribe starts a subscription for v. With after set (an event ID the
// client saw) it first replays every later event v may see, then goes
// live, with no gap and no duplicate; with after empty it starts with the
// next event appended. The caller must Close it.
func (h *Hub) Subscribe(v Viewer, f Filter, after string) (*Subscription, error) {
	if err := h.Check(v, f, after); err != nil {
		return nil, err
	}
	s := &Subscription{
		hub: h, viewer: v, filter: f,
		ch:   make(chan *Frame, h.cfg.Buffer),
		done: make(chan struct{}),
		live: after == "",
	}
	if after == "" {
		// "From now" means after the stream's current end, not after
		// whatever the tailer has reached: an event appended just before
		// Subscribe but not yet tailed is not this subscriber's.
		after = h.streamEnd()
	}
	if after != "" {
		id, _ := state.ParseID(after)
		s.last, s.replaying, s.live = id.String(), true, false
	}
	s.key, s.bucket = h.bucketOf(v, f)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return nil, ErrHubStopped
	}
	switch s.bucket {
	case bucketTicket:
		h.byTicket[s.key] = append(h.byTicket[s.key], s)
	case bucketCustomer:
		h.byCustomer[s.key] = append(h.byCustomer[s.key], s)
	case bucketQueue:
		h.byQueue[s.key] = append(h.byQueue[s.key], s)
	default:
		h.all = append(h.all, s)
	}
	h.count++
	return s, nil
}

// streamEnd returns the ID of the stream's newest event ("" if empty or
// unreadable: then the subscription starts from the tailer's position).
func (h *Hub) streamEnd() string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	es, err := h.svc.st.XRevRange(ctx, StreamEvents, "", 1)
	if err != nil || len(es) == 0 {
		return ""
	}
	return es[0].ID
}

// refreshPresence records the subscription as live at a third of
// PresenceTTL; Next calls it, so the first call marks the user live. A failure only makes the user look offline (a push they
// might not have needed), so it is logged, not returned.
func (s *Subscription) refreshPresence(ctx context.Context) {
	p := s.hub.cfg.Presence
	if p == nil || time.Since(s.touched) < PresenceTTL/3 {
		return
	}
	s.touched = time.Now()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := p.Touch(ctx, s.viewer.ID, s.conn()); err != nil {
		s.hub.log.Warn("feed: presence", "err", err)
	}
}

// conn names the subscription among its user's live connections.
func (s *Subscription) conn() string { return fmt.Sprintf("%p", s) + "@" + s.hub.node }

const (
	bucketAll = iota
	bucketTicket
	bucketCustomer
	bucketQueue
)

// bucketOf picks the most selective key a subscription is sure to need.
func (h *Hub) bucketOf(v Viewer, f Filter) (string, int) {
	switch {
	case f.Ticket != "":
		return f.Ticket, bucketTicket
	case v.Role == auth.RoleCustomer:
		return v.ID, bucketCustomer
	case f.Customer != "":
		return f.Customer, bucketCustomer
	case f.Queue != "":
		return f.Queue, bucketQueue
	case v.Role == auth.RoleAgent && len(v.Queues) == 1:
		return v.Queues[0], bucketQueue
	}
	return "", bucketAll
}

// removeLocked takes s out of its bucket; it reports false if s was not
// there (already removed). h.mu is held.
func (h *Hub) removeLocked(s *Subscription) bool {
	var list []*Subscription
	switch s.bucket {
	case bucketTicket:
		list = h.byTicket[s.key]
	case bucketCustomer:
		list = h.byCustomer[s.key]
	case bucketQueue:
		list = h.byQueue[s.key]
	default:
		list = h.all
	}
	i := slices.Index(list, s)
	if i < 0 {
		return false
	}
	list = slices.Delete(list, i, i+1)
	switch s.bucket {
	case bucketTicket:
		setOrDelete(h.byTicket, s.key, list)
	case bucketCustomer:
		setOrDelete(h.byCustomer, s.key, list)
	case bucketQueue:
		setOrDelete(h.byQueue, s.key, list)
	default:
		h.all = list
	}
	h.count--
	return true
}

func setOrDelete(m map[string][]*Subscription, k string, l []*Subscription) {
	if len(l) == 0 {
		delete(m, k)
		return
	}
	m[k] = l
}

// Subscription is one subscriber's view of the feed. Next is for one
// goroutine; Close may be called from any.
type Subscription struct {
	hub    *Hub
	viewer Viewer
	filter Filter
	key    string
	bucket int

	// ch holds live events, at most Buffer of them and BufferBytes of
	// JSON (queued). It is never closed: done says the subscription ended.
	ch     chan *Frame
	queued atomic.Int64
	done   chan struct{}
	once   sync.Once
	err    error // set before done is closed

	// Owned by the goroutine calling Next.
	replaying bool
	live      bool   // handed over: live events need no ID check
	last      string // last stream ID the catch-up read
	page      []state.Entry
	pageEnd   bool // the last catch-up read reached the stream's end
	scanned   int
	techs     map[string]string
	timer     *time.Timer
	touched   time.Time // last presence refresh
}

// end closes the subscription with err, once.
func (s *Subscription) end(err error) {
	s.once.Do(func() {
		s.err = err
		close(s.done)
	})
}

// Close ends the subscription; it is idempotent.
func (s *Subscription) Close() {
	h := s.hub
	h.mu.Lock()
	h.removeLocked(s)
	h.mu.Unlock()
	s.end(ErrSubscriptionClosed)
	if p := h.cfg.Presence; p != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = p.Leave(ctx, s.viewer.ID, s.conn())
	}
}

// Done is closed when the subscription has ended; Err then says why.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err is why the subscription ended (nil while it has not).
func (s *Subscription) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Next returns the next event, waiting up to idle for one; it returns
// (nil, nil) when idle passes with none, so the caller can send a
// keepalive. It returns the subscription's error once it has ended
// (ErrSlowConsumer, ErrReplayTooLong, ErrHubStopped...), ctx's error
// when ctx ends, or a backend error during catch-up. Events still queued
// when the subscription is cut off are dropped: the client resumes from
// the last event it got.
func (s *Subscription) Next(ctx context.Context, idle time.Duration) (*Frame, error) {
	for {
		if err := s.Err(); err != nil {
			return nil, err
		}
		s.refreshPresence(ctx)
		if s.replaying {
			f, err := s.replayNext(ctx)
			if err != nil {
				if errors.Is(err, ErrReplayTooLong) {
					s.end(err)
					s.Close()
				}
				return nil, err
			}
			if f != nil {
				return f, nil
			}
			continue
		}
		select {
		case f := <-s.ch:
			if s.accept(f) {
				return f, nil
			}
			continue
		default:
		}
		if s.timer == nil {
			s.timer = time.NewTimer(idle)
		} else {
			s.timer.Reset(idle)
		}
		select {
		case f := <-s.ch:
			s.timer.Stop()
			if s.accept(f) {
				return f, nil
			}
		case <-s.done:
			s.timer.Stop()
			return nil, s.err
		case <-ctx.Done():
			s.timer.Stop()
			return nil, ctx.Err()
		case <-s.timer.C:
			return nil, nil
		}
	}
}

// accept releases f's bytes and reports whether it is new to the client:
// right after a catch-up, live events the catch-up already read are
// skipped. Stream order means the first newer one ends the check.
func (s *Subscription) accept(f *Frame) bool {
	s.queued.Add(-int64(len(f.JSON)))
	if s.live {
		return true
	}
	if state.CompareIDs(f.Event.ID, s.last) <= 0 {
		return false
	}
	s.live = true
	return true
}

// replayNext returns the next catch-up event v may see, or nil once the
// catch-up has reached the end of the stream.
func (s *Subscription) replayNext(ctx context.Context) (*Frame, error) {
	h := s.hub
	for {
		for len(s.page) > 0 {
			e := s.page[0]
			s.page = s.page[1:]
			s.last = e.ID
			f, err := newFrame(e)
			if err != nil {
				continue // logged by the hub when it was live
			}
			if s.matches(f.Event, s.replayTech(ctx)) {
				return f, nil
			}
		}
		if s.pageEnd {
			s.replaying, s.page, s.techs = false, nil, nil
			return nil, nil
		}
		es, err := h.svc.st.XRead(ctx, StreamEvents, s.last, replayPage, 0)
		if err != nil {
			return nil, fmt.Errorf("feed catch-up: %w", err)
		}
		if len(es) > 0 && s.scanned+len(es) > h.cfg.MaxReplay {
			return nil, ErrReplayTooLong
		}
		s.scanned += len(es)
		s.page, s.pageEnd = es, len(es) < replayPage
	}
}

// replayTech looks up technicians during catch-up, with a small cache of
// its own (Run's cache is Run's alone).
func (s *Subscription) replayTech(ctx context.Context) func(string) string {
	return func(ticket string) string {
		if t, ok := s.techs[ticket]; ok {
			return t
		}
		if s.techs == nil || len(s.techs) >= replayPage {
			s.techs = map[string]string{}
		}
		t, _, err := s.hub.svc.loadTicket(ctx, ticket)
		if err != nil {
			return ""
		}
		s.techs[ticket] = t.Technician
		return t.Technician
	}
}

// matches applies the filter, then what the viewer may see: staff all
// (agents with queue scopes only their queues), customers their own
// events without internal notes, technicians the tickets dispatched to
// them.
func (s *Subscription) matches(ev *api.Event, technician func(ticket string) string) bool {
	f, v := &s.filter, &s.viewer
	if f.Ticket != "" && ev.TicketID != f.Ticket ||
		f.Customer != "" && ev.CustomerID != f.Customer ||
		f.Queue != "" && ev.Queue != f.Queue ||
		f.Status != "" && ev.Status != f.Status {
		return false
	}
	switch v.Role {
	case RoleSystem, auth.RoleAdmin:
		return true
	case auth.RoleAgent:
		return v.servesQueue(ev.Queue)
	case auth.RoleCustomer:
		return v.SeesEvent(ev)
	case auth.RoleTechnician:
		return ev.TicketID != "" && technician(ev.TicketID) == v.ID
	}
	return false
}
