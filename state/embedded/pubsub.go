package embedded

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/switchboard/switchboard/state"
)

// subscriberBuffer is how many messages a subscriber may fall behind
// before it loses messages: enough to absorb a burst of ticket events
// between two WebSocket writes.
const subscriberBuffer = 256

// hub is in-process pub/sub: one node has no one else to fan out to.
// Each subscriber has a bounded channel (subscriberBuffer); Publish
// never blocks, and a subscriber whose channel is full loses the message,
// counted in its dropped counter. That is the state.PubSub contract
// (at-most-once, "look" not "here is the data") and centrifuge's rule:
// a slow reader must not slow everyone else down.
type hub struct {
	mu       sync.RWMutex
	channels map[string]map[*subscription]struct{}
	all      map[*subscription]struct{}
	closed   bool
}

type subscription struct {
	h        *hub
	channels []string
	ch       chan state.Message
	closed   bool // guarded by h.mu
	dropped  atomic.Uint64
}

// C delivers messages; it is closed when the subscription ends.
func (sub *subscription) C() <-chan state.Message { return sub.ch }

// Close ends the subscription; it is idempotent.
func (sub *subscription) Close() error {
	h := sub.h
	h.mu.Lock()
	defer h.mu.Unlock()
	h.end(sub)
	return nil
}

// end unsubscribes sub and closes its channel. Callers hold h.mu for
// writing, so no publisher is mid-send on the channel.
func (h *hub) end(sub *subscription) {
	if sub.closed {
		return
	}
	sub.closed = true
	for _, c := range sub.channels {
		if subs := h.channels[c]; subs != nil {
			delete(subs, sub)
			if len(subs) == 0 {
				delete(h.channels, c)
			}
		}
	}
	delete(h.all, sub)
	close(sub.ch)
}

func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for sub := range h.all {
		h.end(sub)
	}
}

// Publish delivers payload to every current subscriber of channel that
// has room. The payload is copied once and shared by all subscribers:
// treat a received Payload as read-only.
func (s *Store) Publish(ctx context.Context, channel string, payload []byte) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.leave()
	msg := state.Message{Channel: channel, Payload: bytes.Clone(payload)}
	h := &s.hub
	h.mu.RLock()
	defer h.mu.RUnlock()
	for sub := range h.channels[channel] {
		select {
		case sub.ch <- msg:
		default:
			sub.dropped.Add(1)
		}
	}
	return nil
}

// Subscribe subscribes to channels. Messages published after it returns
// are delivered.
func (s *Store) Subscribe(ctx context.Context, channels ...string) (state.Subscription, error) {
	if len(channels) == 0 {
		return nil, fmt.Errorf("embedded: subscribe: %w: no channels", state.ErrInvalidArgument)
	}
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	sub := &subscription{h: &s.hub, ch: make(chan state.Message, subscriberBuffer)}
	seen := make(map[string]bool, len(channels))
	for _, c := range channels {
		if !seen[c] {
			seen[c] = true
			sub.channels = append(sub.channels, c)
		}
	}
	h := &s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errClosed
	}
	for _, c := range sub.channels {
		subs := h.channels[c]
		if subs == nil {
			subs = make(map[*subscription]struct{})
			h.channels[c] = subs
		}
		subs[sub] = struct{}{}
	}
	h.all[sub] = struct{}{}
	return sub, nil
}
