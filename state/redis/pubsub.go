package redis

import (
	"context"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/state"
)

// subscribeTimeout bounds the wait for Redis to confirm a SUBSCRIBE when
// the caller's context has no deadline; a healthy server answers in well
// under a millisecond.
const subscribeTimeout = 10 * time.Second

// closeWait bounds how long Subscription.Close waits for its goroutine.
// go-redis notices the closed PubSub within one 100 ms retry pause.
const closeWait = 2 * time.Second

// Publish is PUBLISH on the prefixed channel.
func (s *Store) Publish(ctx context.Context, channel string, payload []byte) error {
	// Channel names are not keys: an empty one is allowed, as in the
	// embedded store.
	if s.closed.Load() {
		return errClosed
	}
	return s.wrap(ctx, "publish", s.c.Publish(ctx, s.channel(channel), payload).Err())
}

// Subscribe is SUBSCRIBE on a dedicated connection. It returns only after
// Redis has confirmed every channel, so a message published once
// Subscribe has returned (from any node) is delivered.
//
// Messages reach C through a buffer of Config.SubscriptionBuffer; when the
// reader falls behind and it is full, new messages are dropped (pub/sub is
// at-most-once; anything that must not be lost goes through a stream). If
// the connection breaks, go-redis reconnects and subscribes again;
// messages published meanwhile are lost.
func (s *Store) Subscribe(ctx context.Context, channels ...string) (state.Subscription, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	if len(channels) == 0 {
		return nil, invalid("subscribe", "no channels")
	}
	names := make([]string, len(channels))
	pending := make(map[string]bool, len(channels))
	for i, ch := range channels {
		names[i] = s.channel(ch)
		pending[names[i]] = true
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, subscribeTimeout)
		defer cancel()
	}

	sub := &subscription{
		store: s,
		out:   make(chan state.Message, s.subBuf),
		done:  make(chan struct{}),
	}
	sub.ps = s.c.Subscribe(ctx, names...)
	// Replies come in order: one confirmation per channel, possibly with
	// messages on already confirmed channels in between. Keep those.
	var early []*goredis.Message
	for len(pending) > 0 {
		msg, err := sub.ps.Receive(ctx)
		if err != nil {
			_ = sub.ps.Close()
			return nil, s.wrap(ctx, "subscribe", err)
		}
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				delete(pending, m.Channel)
			}
		case *goredis.Message:
			if len(early) < s.subBuf {
				early = append(early, m)
			}
		}
	}

	s.mu.Lock()
	if s.subs == nil { // Close ran while we subscribed
		s.mu.Unlock()
		_ = sub.ps.Close()
		return nil, errClosed
	}
	s.subs[sub] = struct{}{}
	s.mu.Unlock()

	// go-redis's channel has its own buffer and health-check pings; our
	// goroutine drains it at once, so its one-minute send timeout never
	// applies and a slow reader only loses messages from our buffer.
	in := sub.ps.Channel(goredis.WithChannelSize(s.subBuf))
	go sub.forward(early, in)
	return sub, nil
}

type subscription struct {
	store *Store
	ps    *goredis.PubSub
	out   chan state.Message
	done  chan struct{} // closed when forward has returned

	once sync.Once
	err  error
}

func (sub *subscription) C() <-chan state.Message { return sub.out }

// Close unsubscribes, closes C and waits (briefly) for the goroutine that
// fed it. It is idempotent.
func (sub *subscription) Close() error {
	sub.once.Do(func() {
		s := sub.store
		s.mu.Lock()
		if s.subs != nil {
			delete(s.subs, sub)
		}
		s.mu.Unlock()
		if err := sub.ps.Close(); err != nil && err != goredis.ErrClosed {
			sub.err = err
		}
		select {
		case <-sub.done:
		case <-time.After(closeWait):
		}
	})
	return sub.err
}

// forward moves messages from go-redis into C, dropping what does not
// fit, until go-redis closes its channel (after ps.Close).
func (sub *subscription) forward(early []*goredis.Message, in <-chan *goredis.Message) {
	defer close(sub.done)
	defer close(sub.out)
	for _, m := range early {
		sub.deliver(m)
	}
	for m := range in {
		sub.deliver(m)
	}
}

func (sub *subscription) deliver(m *goredis.Message) {
	msg := state.Message{
		Channel: strings.TrimPrefix(m.Channel, sub.store.prefix+"ps:"),
		Payload: []byte(m.Payload),
	}
	select {
	case sub.out <- msg:
	default: // full: at-most-once, drop
	}
}
