package device_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/device"
)

// TestRelaySessionPushesCommands: a relay session opens for whoever may
// relay, wakes when any node queues a command for its appliance (and
// only its own), hands each command out once, and can do nothing after
// a release.
func TestRelaySessionPushesCommands(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r := b.rig(t)
		ctx := context.Background()
		u, v := r.register(t, "PJ-100"), r.register(t, "PJ-100")
		relay, relayV := r.pair(t, u, "joe"), r.pair(t, v, "eve")
		if _, err := r.svc.OpenRelay(ctx, relayV, u.id); !errors.Is(err, device.ErrNotFound) {
			t.Fatalf("another appliance's relay token: %v", err)
		}
		if _, err := r.svc.OpenRelay(ctx, customer("joe"), u.id); !errors.Is(err, device.ErrForbidden) {
			t.Fatalf("the owner's own token: %v", err)
		}
		sess, err := r.svc.OpenRelay(ctx, relay, u.id)
		if err != nil {
			t.Fatal(err)
		}
		sessV, err := r.svc.OpenRelay(ctx, relayV, v.id)
		if err != nil {
			t.Fatal(err)
		}
		wake, stop, err := sess.WatchCommands(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		wakeV, stopV, err := sessV.WatchCommands(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range []struct{ who, id string }{{"joe", u.id}, {"eve", v.id}} {
			if _, err := r.svc.Grant(ctx, customer(g.who), g.id, api.GrantRequest{Hours: 1}); err != nil {
				t.Fatal(err)
			}
		}
		// Another node sends it: on Redis the wake-up crosses nodes.
		other := newRigOn(t, r.node(t), r.dataDir)
		self := api.CommandRequest{Kind: api.CommandSelfTest}
		cmd, err := other.svc.Command(ctx, agent("ag1"), u.id, self)
		if err != nil {
			t.Fatal(err)
		}
		waitWake(t, wake)
		select {
		case <-wakeV:
			t.Fatal("a session woke for another appliance's command")
		default:
		}
		if cmds, err := sess.Commands(ctx); err != nil || len(cmds) != 1 || cmds[0].ID != cmd.ID {
			t.Fatalf("commands %v %+v", err, cmds)
		}
		if cmds, err := sess.Commands(ctx); err != nil || len(cmds) != 0 {
			t.Fatalf("handed out twice: %v %+v", err, cmds)
		}
		if res, err := sess.Relay(ctx, []api.SignedFrame{u.frame(r.clock.now(), nil)}); err != nil || res.Accepted != 1 {
			t.Fatalf("relay through the session: %v %+v", err, res)
		}

		// The last watcher gone, the next one subscribes again.
		stopV()
		stop()
		wake2, stop2, err := sessV.WatchCommands(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer stop2()
		if _, err := other.svc.Command(ctx, agent("ag1"), v.id, self); err != nil {
			t.Fatal(err)
		}
		waitWake(t, wake2)

		if err := r.svc.Release(ctx, customer("joe"), u.id); err != nil {
			t.Fatal(err)
		}
		if _, err := sess.Commands(ctx); !errors.Is(err, device.ErrNotFound) {
			t.Fatalf("commands after release: %v", err)
		}
		if _, err := sess.Relay(ctx, []api.SignedFrame{u.frame(r.clock.now(), nil)}); !errors.Is(err, device.ErrNotFound) {
			t.Fatalf("relay after release: %v", err)
		}
	})
}

func waitWake(t testing.TB, wake <-chan struct{}) {
	t.Helper()
	select {
	case <-wake:
	case <-time.After(10 * time.Second):
		t.Fatal("no wake-up for a queued command")
	}
}
