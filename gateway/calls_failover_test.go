package gateway_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/rtc"
	"github.com/switchboard/switchboard/state/backend"
)

// twoNodesOnRedis are two call nodes on one real redis-server, with
// short liveness and grace so a dead node is noticed in a test's time.
func twoNodesOnRedis(t *testing.T) (a, b *callEnv) {
	t.Helper()
	url := redistest.Start(t).URL()
	key := sharedKey(t)
	node := func(name string) *callEnv {
		st, err := backend.Open(context.Background(), backend.Config{RedisURL: url, DataDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return newCallEnv(t, st, key, name, func(c *rtc.Config) {
			c.NodeTTL, c.ReconnectGrace = 600*time.Millisecond, 2*time.Second
		})
	}
	return node("node-a"), node("node-b")
}

// TestCallSurvivesMediaNode: the call's media runs on node A; A's call
// service stops (its relay and liveness gone, as when the node dies). Both
// parties rejoin through node B, which takes the call over, and media
// flows again on the same call; the call ends once, normally.
func TestCallSurvivesMediaNode(t *testing.T) {
	a, b := twoNodesOnRedis(t)
	cm, am, cc, ac, agentSig := connectCall(t, a, b, "joe", "ann")
	a.stopCalls()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The app's way back: Rejoin, a new PeerConnection with the same
	// tracks, over signaling to any live node.
	custSig := dial(t, b.client(t, "joe", auth.RoleCustomer))
	cc2, err := cc.Rejoin(ctx, custSig)
	if err != nil {
		t.Fatalf("customer rejoin through node B: %v", err)
	}
	t.Cleanup(cc2.Close)
	ac2, err := ac.Rejoin(ctx, agentSig)
	if err != nil {
		t.Fatalf("agent rejoin: %v", err)
	}
	t.Cleanup(ac2.Close)
	flowing(t, cm, am)
	if n := b.calls.Relay().Rooms(); n != 1 {
		t.Fatalf("node B hosts %d rooms, want the adopted call", n)
	}
	got, err := b.client(t, "joe", auth.RoleCustomer).Call(context.Background(), cc.ID)
	if err != nil || got.State != api.CallActive {
		t.Fatalf("call after failover: %+v %v", got, err)
	}
	hangUpSeen(t, ac2, cc2)
}

// TestCallOrphanEnds: the media node dies and nobody rejoins: another
// node adopts the call and ends it after the grace ("network"), which
// frees the agent for the next call.
func TestCallOrphanEnds(t *testing.T) {
	a, b := twoNodesOnRedis(t)
	_, _, cc, _, _ := connectCall(t, a, b, "joe", "ann")
	a.stopCalls()
	cl := b.client(t, "joe", auth.RoleCustomer)
	poll.Until(t, 20*time.Second, 50*time.Millisecond, func() error {
		got, err := cl.Call(context.Background(), cc.ID)
		if err != nil {
			return err
		}
		if got.State != api.CallEnded || got.EndReason != "network" {
			return fmt.Errorf("call %s (%s)", got.State, got.EndReason)
		}
		return nil
	})
	poll.Until(t, 10*time.Second, 50*time.Millisecond, func() error {
		if ag, err := b.calls.Agent(context.Background(), "ann"); err != nil || ag.Status != api.AgentAvailable {
			return fmt.Errorf("agent %+v %v", ag, err)
		}
		return nil
	})
}
