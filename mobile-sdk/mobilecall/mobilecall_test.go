package mobilecall_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/mobile-sdk/call"
	"github.com/switchboard/switchboard/mobile-sdk/mobilecall"
)

// TestCallThroughWrapper: a customer's app places a video call through
// the bindable wrapper and an agent (the Go SDK with pion) answers. The
// app hears queued, ringing, connected; frames it writes reach the agent
// and the agent's frames reach it intact, rebuilt from their packets; a
// data channel message goes each way; mute drops the app's frames and
// tells the agent; hanging up ends the call on both sides; and Close
// leaves no goroutine behind.
func TestCallThroughWrapper(t *testing.T) {
	g := startGateway(t)
	a := g.newAgent(t, "ann", "projectors")
	_, caller, ticketID := g.customer(t, "joe")
	// Whatever runs now (the gateway, the agent's signaling, the app's
	// HTTP connection) is not the call's; what the call starts must be
	// gone after Close.
	before, _ := goroutines()
	c, l, cust, agentFeed := place(t, caller, ticketID, a)

	l.mu.Lock()
	var seen []string
	for _, s := range l.states {
		seen = append(seen, s.State)
	}
	first := l.states[0]
	l.mu.Unlock()
	if want := []string{"queued", "ringing", "connected"}; !slices.Equal(seen, want) {
		t.Fatalf("states %v, want %v", seen, want)
	}
	if first.Position != 1 {
		t.Errorf("queued at position %d, want 1", first.Position)
	}

	flowing(t, l, a, 10)
	l.mu.Lock()
	bad, durs := l.bad, l.durMs
	if len(bad) > 0 {
		t.Errorf("damaged frames: %v", bad)
	}
	// Durations come from the RTP timestamps the agent's writes set.
	if durs["agent-audio"][audioMs] < 10 || durs["agent-video"][videoMs] < 10 {
		t.Errorf("frame durations (ms -> frames): %v, want %d ms audio and %d ms video", durs, audioMs, videoMs)
	}
	l.mu.Unlock()

	// The data channel, both ways.
	poll.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		_ = c.SendData([]byte(`{"fault":"E42"}`)) // fails until the channel is open
		a.mu.Lock()
		defer a.mu.Unlock()
		if !slices.Contains(a.data, `{"fault":"E42"}`) {
			return fmt.Errorf("the agent got %q", a.data)
		}
		return nil
	})
	if err := a.call.SendData([]byte("lamp replaced?")); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if !slices.Contains(l.data, "lamp replaced?") {
			return fmt.Errorf("the app got %q", l.data)
		}
		return nil
	})

	// Mute: the agent is told, and no audio frame begun while muted is
	// sent. Frames after cust.n's value once SetMuted returned, up to
	// its value before unmuting, were all written while muted.
	if err := c.SetMuted(true, false); err != nil {
		t.Fatal(err)
	}
	from := int(cust.n.Load()) + 1
	if m := a.wait(t, api.SigMute); m.Mute == nil || !m.Mute.Audio || m.Mute.Video {
		t.Fatalf("the agent was told %+v, want audio muted", m.Mute)
	}
	poll.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		if n := int(cust.n.Load()); n < from+10 {
			return fmt.Errorf("%d audio frames written while muted, want 10", n-from)
		}
		return nil
	})
	to := int(cust.n.Load())
	if err := c.SetMuted(false, false); err != nil {
		t.Fatal(err)
	}
	// Audio after the unmute arrives; on one stream, in order, so any
	// muted frame that had been sent would have arrived before it.
	poll.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		for i := to + 1; i < to+50; i++ {
			if a.got("cust-audio", i) {
				return nil
			}
		}
		return fmt.Errorf("no audio after the unmute (frames after %d)", to)
	})
	for i := from; i <= to; i++ {
		if a.got("cust-audio", i) {
			t.Fatalf("audio frame %d, written while muted (%d..%d), reached the agent", i, from, to)
		}
	}

	// The app hangs up: both sides end, the listener is told who hung up.
	if err := c.HangUp(); err != nil {
		t.Fatal(err)
	}
	if s := l.last(); s.State != mobilecall.StateEnded || s.Reason != mobilecall.ReasonHungUp || s.HungUpBy != "joe" {
		t.Fatalf("after HangUp the app heard %+v", s)
	}
	select {
	case <-a.call.Ended():
	case <-time.After(10 * time.Second):
		t.Fatal("the agent's side did not end")
	}
	if err := c.SendData([]byte("x")); !errors.Is(err, call.ErrEnded) {
		t.Fatalf("SendData after the end: %v, want call.ErrEnded", err)
	}
	if err := c.HangUp(); err != nil {
		t.Fatalf("a second HangUp: %v", err)
	}

	// Close stops everything the call started: with the feeders and the
	// agent's call stopped, the goroutine count settles back.
	cust.stop()
	agentFeed.stop()
	a.call.Close()
	closeWithin(t, c, 20*time.Second)
	l.mu.Lock()
	heard := len(l.states)
	l.mu.Unlock()
	poll.Until(t, 20*time.Second, 50*time.Millisecond, func() error {
		if n, stacks := goroutines(); n > before {
			return fmt.Errorf("%d goroutines after Close, %d before the call:\n%s", n, before, stacks)
		}
		return nil
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.states) != heard {
		t.Fatalf("the listener heard %v after Close", l.states[heard:])
	}
	if len(l.errs) > 0 {
		t.Errorf("the listener heard errors: %v", l.errs)
	}
}
