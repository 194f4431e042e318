package mobilecall_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/mobile-sdk/mobilecall"
	"github.com/switchboard/switchboard/rtc"
	"github.com/switchboard/switchboard/state/backend"
)

// TestReconnect: the app's network changes; the signaling connection
// drops (the listener is told) while the media link may linger. Reconnect
// restarts ICE over a new signaling connection (the gateway answers with
// new credentials): frames flow both ways again, and the agent's
// hang-up reaches the app over the new connection.
func TestReconnect(t *testing.T) {
	g := startGateway(t)
	lb := balance(t, g.url)
	a := g.newAgent(t, "ann", "projectors")
	_, caller, ticketID := g.customerAt(t, "joe", lb.url)
	c, l, _, _ := place(t, caller, ticketID, a)
	flowing(t, l, a, 10)

	lb.cut()
	poll.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if !slices.ContainsFunc(l.errs, func(e string) bool { return strings.Contains(e, "signaling connection lost") }) {
			return fmt.Errorf("the app heard %q, want the signaling connection lost", l.errs)
		}
		return nil
	})
	local, remote := mobilecall.Ufrags(c)
	if err := c.Reconnect(); err != nil {
		t.Fatal(err)
	}
	// The gateway answered the restart: both sides have new credentials.
	poll.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		if l2, r2 := mobilecall.Ufrags(c); l2 == local || r2 == remote || r2 == "" {
			return fmt.Errorf("ICE ufrags %q/%q before Reconnect, %q/%q after: the restart was not answered", local, remote, l2, r2)
		}
		return nil
	})
	flowing(t, l, a, 10)
	if s := l.last(); s.State != mobilecall.StateConnected {
		t.Fatalf("state after Reconnect %+v", s)
	}
	annHangsUp(t, c, l, a)
}

// TestSignalingTokenExpiry: the gateway closes a signaling connection
// once the token it was opened with expires (close code 4001), here every
// 3 s. The call moves to a new connection with a refreshed token by
// itself: the app hears no error, the media link is not restarted (same
// ICE credentials), frames keep flowing, and the agent's hang-up reaches
// the app over the newest connection.
func TestSignalingTokenExpiry(t *testing.T) {
	g := startGatewayAuth(t, auth.Config{AccessTTL: 3 * time.Second})
	a := g.newAgent(t, "ann", "projectors")
	_, caller, ticketID := g.customer(t, "joe")
	c, l, _, _ := place(t, caller, ticketID, a)
	flowing(t, l, a, 10)
	local, remote := mobilecall.Ufrags(c)

	seen := []any{mobilecall.SignalingOf(c)}
	poll.Until(t, 30*time.Second, 20*time.Millisecond, func() error {
		if s := mobilecall.SignalingOf(c); s != seen[len(seen)-1] {
			seen = append(seen, s)
		}
		if len(seen) < 3 {
			l.mu.Lock()
			defer l.mu.Unlock()
			return fmt.Errorf("%d signaling connections so far, want the call moved twice (errors heard: %q)", len(seen), l.errs)
		}
		return nil
	})
	l.mu.Lock()
	errs := slices.Clone(l.errs)
	l.mu.Unlock()
	if len(errs) > 0 {
		t.Fatalf("the app heard errors %q; an expired token's connection should be replaced quietly", errs)
	}
	if l2, r2 := mobilecall.Ufrags(c); l2 != local || r2 != remote {
		t.Fatalf("ICE ufrags %q/%q became %q/%q: the media was restarted for a signaling hand-over", local, remote, l2, r2)
	}
	flowing(t, l, a, 10)
	annHangsUp(t, c, l, a)
}

// TestRejoin: the gateway node that carries the call's media dies (its
// call service stops; the load balancer sends new connections to the
// other node). Rejoin connects again through the other node, which takes
// the call over; with the agent rejoined there too, frames flow both ways
// on the same call. Closing the call then hangs it up.
func TestRejoin(t *testing.T) {
	url := redistest.Start(t).URL()
	key, err := auth.LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	node := func(name string) *gw {
		st, err := backend.Open(context.Background(), backend.Config{RedisURL: url, DataDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		// A dead node is noticed, and its calls adopted, within a test's time.
		return startNode(t, st, key, name, auth.Config{}, func(c *rtc.Config) { c.NodeTTL, c.ReconnectGrace = 600*time.Millisecond, 2*time.Second })
	}
	nodeA, nodeB := node("node-a"), node("node-b")
	lb := balance(t, nodeA.url)
	a := nodeB.newAgent(t, "ann", "projectors")
	_, caller, ticketID := nodeA.customerAt(t, "joe", lb.url)
	c, l, _, _ := place(t, caller, ticketID, a)
	flowing(t, l, a, 10)

	nodeA.stopCalls()
	lb.to(nodeB.url)
	if err := c.Rejoin(); err != nil {
		t.Fatalf("rejoin through node B: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ac, err := a.call.Rejoin(ctx, a.sig)
	if err != nil {
		t.Fatalf("agent rejoin: %v", err)
	}
	a.call = ac
	t.Cleanup(ac.Close)
	flowing(t, l, a, 10)
	if s := l.last(); s.State != mobilecall.StateConnected {
		t.Fatalf("state after Rejoin %+v", s)
	}
	// Close on a call still on hangs up.
	closeWithin(t, c, 20*time.Second)
	select {
	case <-ac.Ended():
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the call on the agent's side")
	}
}

// annHangsUp: the agent (ann) hangs up, the app hears it over its
// signaling, and the call closes cleanly.
func annHangsUp(t *testing.T, c *mobilecall.Call, l *listener, a *agent) {
	t.Helper()
	if err := a.call.HangUp(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		if s := l.last(); s.State != mobilecall.StateEnded || s.Reason != mobilecall.ReasonHungUp || s.HungUpBy != "ann" {
			return fmt.Errorf("the app heard %+v, want ended by ann", s)
		}
		return nil
	})
	closeWithin(t, c, 20*time.Second)
}
