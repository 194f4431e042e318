package device

import (
	"context"
	"fmt"
	"sync"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/state"
)

// chCommands is the pub/sub channel that says "a command is waiting for
// appliance X" (the payload is X's ID). It only says look: the queue
// holds the commands, so a lost message delays a command, never loses it.
const chCommands = "dev:cmds"

// relayer returns the appliance c may relay frames for, and its owner:
// c must be a relay token of that appliance issued to its current owner.
func (s *Service) relayer(ctx context.Context, c Caller, id string) (*appliance, *owner, error) {
	if c.Role != auth.RoleDevice {
		return nil, nil, fmt.Errorf("%w: frames are relayed with the appliance's relay token", ErrForbidden)
	}
	return s.owned(ctx, c, id)
}

// RelaySession is a phone's open connection for relaying one appliance
// (the relay WebSocket): it ingests batches as Relay does and hands out
// the appliance's commands as soon as they are sent. Each call checks the
// caller again, so a release or transfer ends what the session may do.
type RelaySession struct {
	s  *Service
	c  Caller
	id string
}

// OpenRelay checks that c may relay for the appliance with id, with
// Relay's answers (ErrForbidden for a token that is not a relay token,
// ErrNotFound for any other appliance), and returns a session for it. The
// session holds nothing until WatchCommands.
func (s *Service) OpenRelay(ctx context.Context, c Caller, id string) (*RelaySession, error) {
	a, _, err := s.relayer(ctx, c, id)
	if err != nil {
		return nil, err
	}
	return &RelaySession{s: s, c: c, id: a.ID}, nil
}

// Relay ingests a batch of signed frames, as Service.Relay.
func (r *RelaySession) Relay(ctx context.Context, frames []api.SignedFrame) (api.DiagnosticsResult, error) {
	return r.s.Relay(ctx, r.c, r.id, frames)
}

// Commands hands out the appliance's waiting commands, each once, as
// PendingCommands. ErrNotFound means the session's token no longer
// relays for the appliance.
func (r *RelaySession) Commands(ctx context.Context) ([]api.Command, error) {
	l, err := r.s.PendingCommands(ctx, r.c, r.id)
	return l.Commands, err
}

// WatchCommands returns a channel that receives when a command was queued
// for the appliance (on any node), and the function that stops watching,
// which must be called. Wake-ups coalesce and pub/sub may lose one, so a
// holder calls Commands on each wake-up and also now and then.
func (r *RelaySession) WatchCommands(ctx context.Context) (<-chan struct{}, func(), error) {
	ch, err := r.s.feed.watch(ctx, r.s.st, r.id)
	if err != nil {
		return nil, nil, err
	}
	return ch, func() { r.s.feed.unwatch(r.id, ch) }, nil
}

// commandFeed wakes this node's relay sessions when a command is queued
// for their appliance. One subscription serves them all (one per session
// would be a Redis connection per phone); it opens with the first watcher
// and closes with the last, which owns the pump goroutine's stop.
type commandFeed struct {
	mu       sync.Mutex
	watchers map[string]map[chan struct{}]struct{}
	sub      state.Subscription // nil while nobody watches
	done     chan struct{}      // closed when sub's pump returns
}

func (f *commandFeed) watch(ctx context.Context, ps state.PubSub, id string) (chan struct{}, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sub == nil {
		sub, err := ps.Subscribe(ctx, chCommands)
		if err != nil {
			return nil, err
		}
		f.sub, f.done = sub, make(chan struct{})
		go f.pump(sub, f.done)
	}
	if f.watchers == nil {
		f.watchers = map[string]map[chan struct{}]struct{}{}
	}
	if f.watchers[id] == nil {
		f.watchers[id] = map[chan struct{}]struct{}{}
	}
	ch := make(chan struct{}, 1)
	f.watchers[id][ch] = struct{}{}
	return ch, nil
}

func (f *commandFeed) unwatch(id string, ch chan struct{}) {
	f.mu.Lock()
	delete(f.watchers[id], ch)
	if len(f.watchers[id]) == 0 {
		delete(f.watchers, id)
	}
	var (
		sub  state.Subscription
		done chan struct{}
	)
	if len(f.watchers) == 0 && f.sub != nil {
		sub, done = f.sub, f.done
		f.sub, f.done = nil, nil
	}
	f.mu.Unlock()
	if sub != nil {
		_ = sub.Close()
		<-done
	}
}

// pump delivers sub's messages until sub ends. When it ends by itself
// (the store closed, the connection to Redis broke) it is forgotten, so
// the next watcher subscribes again; watchers meanwhile rely on their
// periodic Commands call.
func (f *commandFeed) pump(sub state.Subscription, done chan struct{}) {
	defer close(done)
	for m := range sub.C() {
		f.mu.Lock()
		for ch := range f.watchers[string(m.Payload)] {
			select {
			case ch <- struct{}{}:
			default: // a wake-up is already pending
			}
		}
		f.mu.Unlock()
	}
	f.mu.Lock()
	if f.sub == sub {
		f.sub, f.done = nil, nil
	}
	f.mu.Unlock()
	_ = sub.Close()
}
