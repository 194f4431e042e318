package mobilecall_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/mobile-sdk/call"
	"github.com/switchboard/switchboard/mobile-sdk/mobilecall"
)

// TestMisuse: what an app gets wrong is refused with an error, never a
// panic: Place without a request, a listener or a real ticket; frames
// that are empty, mistimed or of a kind the call lacks; a data message
// the gateway would drop; a keyframe request on an audio call or an ended one; and every method of a closed call. A call hung up while it waits ends "abandoned".
func TestMisuse(t *testing.T) {
	g := startGateway(t)
	_, caller, ticketID := g.customer(t, "joe")
	if _, err := mobilecall.NewCaller(nil); err == nil {
		t.Error("NewCaller(nil) accepted")
	}
	l := newListener()
	if _, err := caller.Place(nil, l); err == nil {
		t.Error("Place without a request accepted")
	}
	if _, err := caller.Place(&mobilecall.PlaceRequest{TicketID: ticketID}, nil); err == nil {
		t.Error("Place without a listener accepted")
	}
	// Refusals carry the gateway's code first, for Kotlin and Swift.
	if _, err := caller.Place(&mobilecall.PlaceRequest{TicketID: "no-such-ticket"}, l); err == nil || !strings.HasPrefix(err.Error(), "not-found (404)") {
		t.Errorf("Place on a missing ticket: %v, want not-found (404)", err)
	}

	// An audio call with no agent about: it waits.
	c, err := caller.Place(&mobilecall.PlaceRequest{TicketID: ticketID}, l)
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		if s := l.last(); s.State != mobilecall.StateQueued || s.Position != 1 {
			return fmt.Errorf("state %+v, want queued first", s)
		}
		return nil
	})
	audio := frame("cust-audio", 1)
	for _, w := range []struct {
		name string
		err  error
		want error
	}{
		{"video on an audio call", c.WriteVideo(frame("cust-video", 1), videoMs), mobilecall.ErrNoVideo},
		{"a keyframe on an audio call", c.RequestKeyframe(), mobilecall.ErrNoVideo},
		{"an empty frame", c.WriteAudio(nil, audioMs), mobilecall.ErrFrame},
		{"no duration", c.WriteAudio(audio, 0), mobilecall.ErrFrame},
		{"a negative duration", c.WriteAudio(audio, -20), mobilecall.ErrFrame},
		{"a duration over a second", c.WriteAudio(audio, 1001), mobilecall.ErrFrame},
		{"a good frame", c.WriteAudio(audio, audioMs), nil},
		{"a data message over 16 KiB", c.SendData(make([]byte, 16<<10+1)), mobilecall.ErrDataSize},
	} {
		if !errors.Is(w.err, w.want) {
			t.Errorf("%s: %v, want %v", w.name, w.err, w.want)
		}
	}
	if err := c.HangUp(); err != nil {
		t.Fatal(err)
	}
	if s := l.last(); s.State != mobilecall.StateEnded || s.Reason != "abandoned" {
		t.Fatalf("hung up while waiting: %+v, want ended abandoned", s)
	}
	if err := c.RequestKeyframe(); !errors.Is(err, call.ErrEnded) {
		t.Errorf("RequestKeyframe after the end: %v, want call.ErrEnded", err)
	}

	closeWithin(t, c, 20*time.Second)
	for name, err := range map[string]error{
		"WriteAudio":      c.WriteAudio(audio, audioMs),
		"WriteVideo":      c.WriteVideo(frame("cust-video", 1), videoMs),
		"SendData":        c.SendData([]byte("x")),
		"SetMuted":        c.SetMuted(true, true),
		"HangUp":          c.HangUp(),
		"Reconnect":       c.Reconnect(),
		"Rejoin":          c.Rejoin(),
		"RequestKeyframe": c.RequestKeyframe(),
	} {
		if !errors.Is(err, mobilecall.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	if err := c.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
	if c.ID() == "" {
		t.Error("a closed call forgot its ID")
	}
}
