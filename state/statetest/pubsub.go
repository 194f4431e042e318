package statetest

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard/switchboard/state"
)

var pubsubCases = []testCase{
	{"Deliver", testPubSubDeliver},
	{"FanOut", testPubSubFanOut},
}

// receive waits for the next message on sub.
func receive(t testing.TB, ctx context.Context, sub state.Subscription) state.Message {
	t.Helper()
	select {
	case m, ok := <-sub.C():
		if !ok {
			t.Fatal("subscription closed while waiting for a message")
		}
		return m
	case <-time.After(waitFor):
		t.Fatal("no message within", waitFor)
	case <-ctx.Done():
		t.Fatal("context done waiting for a message")
	}
	return state.Message{}
}

func wantMessage(t testing.TB, got state.Message, channel, payload string) {
	t.Helper()
	if got.Channel != channel || string(got.Payload) != payload {
		t.Fatalf("message: got %s %q, want %s %q", got.Channel, got.Payload, channel, payload)
	}
}

// waitClosed drains sub.C until it is closed.
func waitClosed(t testing.TB, sub state.Subscription) {
	t.Helper()
	timeout := time.After(waitFor)
	for {
		select {
		case _, ok := <-sub.C():
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("subscription channel not closed after Close")
		}
	}
}

func testPubSubDeliver(t *testing.T, s state.Store) {
	ctx := testContext(t)
	sub, err := s.Subscribe(ctx, "a", "b")
	must(t, err, "Subscribe")
	t.Cleanup(func() { sub.Close() })

	must(t, s.Publish(ctx, "a", []byte("one")), "Publish a")
	wantMessage(t, receive(t, ctx, sub), "a", "one")

	// A channel not subscribed to is not delivered: the next message is
	// the one published after it on a subscribed channel.
	must(t, s.Publish(ctx, "c", []byte("not for you")), "Publish c")
	must(t, s.Publish(ctx, "b", []byte("two")), "Publish b")
	wantMessage(t, receive(t, ctx, sub), "b", "two")

	// Messages from one publisher on one channel arrive in order.
	for _, p := range []string{"x", "y", "z"} {
		must(t, s.Publish(ctx, "a", []byte(p)), "Publish")
	}
	for _, p := range []string{"x", "y", "z"} {
		wantMessage(t, receive(t, ctx, sub), "a", p)
	}

	must(t, sub.Close(), "Subscription.Close")
	waitClosed(t, sub)
	must(t, sub.Close(), "Subscription.Close twice")
	// Publishing with nobody listening is fine.
	must(t, s.Publish(ctx, "a", []byte("nobody")), "Publish after unsubscribe")
}

func testPubSubFanOut(t *testing.T, s state.Store) {
	ctx := testContext(t)
	one, err := s.Subscribe(ctx, "news")
	must(t, err, "Subscribe one")
	t.Cleanup(func() { one.Close() })
	two, err := s.Subscribe(ctx, "news", "other")
	must(t, err, "Subscribe two")
	t.Cleanup(func() { two.Close() })
	bystander, err := s.Subscribe(ctx, "other")
	must(t, err, "Subscribe bystander")
	t.Cleanup(func() { bystander.Close() })

	must(t, s.Publish(ctx, "news", []byte("hello")), "Publish news")
	wantMessage(t, receive(t, ctx, one), "news", "hello")
	wantMessage(t, receive(t, ctx, two), "news", "hello")

	must(t, s.Publish(ctx, "other", []byte("marker")), "Publish other")
	wantMessage(t, receive(t, ctx, bystander), "other", "marker") // not "hello"
	wantMessage(t, receive(t, ctx, two), "other", "marker")

	// Closing one subscription leaves the others subscribed.
	must(t, one.Close(), "Close one")
	waitClosed(t, one)
	must(t, s.Publish(ctx, "news", []byte("again")), "Publish news again")
	wantMessage(t, receive(t, ctx, two), "news", "again")
}
