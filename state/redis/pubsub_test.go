package redis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/state"
)

func recv(t *testing.T, sub state.Subscription) state.Message {
	t.Helper()
	select {
	case m, ok := <-sub.C():
		if !ok {
			t.Fatal("subscription closed")
		}
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
	}
	return state.Message{}
}

// TestPubSubAcrossStores is two gateway nodes: two Stores, two go-redis
// clients, one Redis. A message published on one right after Subscribe
// returned on the other must arrive: Subscribe waits for Redis to confirm.
func TestPubSubAcrossStores(t *testing.T) {
	srv := redistest.Start(t)
	const prefix = "nodes:"
	a := newStoreWithPrefix(t, srv, prefix)
	b := newStoreWithPrefix(t, srv, prefix)
	other := newStoreWithPrefix(t, srv, "elsewhere:") // another deployment
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	stray, err := other.Subscribe(ctx, "call:1")
	if err != nil {
		t.Fatal(err)
	}
	defer stray.Close()

	// Many rounds: the race between SUBSCRIBE and PUBLISH is short.
	for i := range 50 {
		sub, err := a.Subscribe(ctx, "call:1", fmt.Sprintf("call:x%d", i))
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("offer-%d", i)
		if err := b.Publish(ctx, "call:1", []byte(want)); err != nil {
			t.Fatal(err)
		}
		m := recv(t, sub)
		if m.Channel != "call:1" || string(m.Payload) != want {
			t.Fatalf("round %d: got %s %q, want call:1 %q", i, m.Channel, m.Payload, want)
		}
		if err := sub.Close(); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case m := <-stray.C():
		t.Fatalf("another prefix received %v", m)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestPubSubSlowReader checks the bound: a subscriber that does not read
// loses messages beyond its buffer, never blocks the publisher or other
// subscribers, and still closes.
func TestPubSubSlowReader(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := newStore(t, srv)
	slow, err := s.Subscribe(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	fast, err := s.Subscribe(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()

	const n = 2000 // well above go-redis's and our buffers together
	got := make(chan int)
	go func() {
		count := 0
		for m := range fast.C() {
			count++
			if string(m.Payload) == "last" {
				break
			}
		}
		got <- count
	}()
	for i := range n {
		if err := s.Publish(ctx, "c", fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Publish(ctx, "c", []byte("last")); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-got:
		if c == 0 {
			t.Fatal("fast reader got nothing")
		}
		t.Logf("fast reader got %d of %d", c, n+1)
	case <-time.After(10 * time.Second):
		t.Fatal("fast reader stalled behind the slow one")
	}
	if l := len(slow.C()); l > cap(slow.C()) || cap(slow.C()) == 0 {
		t.Fatalf("slow buffer: len %d cap %d", l, cap(slow.C()))
	}
	done := make(chan struct{})
	go func() { slow.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close of a full subscription hangs")
	}
	for range slow.C() { // drains and ends: C is closed
	}
}

// TestPubSubStoreClose: closing the Store ends its subscriptions.
func TestPubSubStoreClose(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := newStore(t, srv)
	sub, err := s.Subscribe(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-sub.C():
		if ok {
			t.Fatal("message after Store.Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Store.Close did not end the subscription")
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("Subscription.Close after Store.Close: %v", err)
	}
}
