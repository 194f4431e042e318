package device_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/device"
)

func TestRelayWritesDiagnosticsInSequenceOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r := b.rig(t)
		ctx := context.Background()
		u := r.register(t, "PJ-100")
		relay := r.pair(t, u, "joe")
		now := r.clock.now()
		var fs []api.SignedFrame
		for i := range 5 {
			fs = append(fs, u.frame(now.Add(time.Duration(i)*time.Second), map[string]float64{"lamp_temp_c": 80 + float64(i)}))
		}
		// The phone's buffer comes out of order; the stream is in seq order.
		fs[0], fs[3] = fs[3], fs[0]
		res, err := r.svc.Relay(ctx, relay, u.id, fs)
		if err != nil || res.Accepted != 5 || res.Duplicates != 0 {
			t.Fatalf("relay: %v %+v", err, res)
		}
		evs := r.events(t, api.EventDiagnostic)
		if len(evs) != 5 {
			t.Fatalf("%d diagnostic events", len(evs))
		}
		for i, ev := range evs {
			p := diagOf(t, ev)
			if p.Seq != uint64(i+1) || p.ApplianceID != u.id || p.Serial != u.serial || ev.CustomerID != "joe" || ev.Channel != api.ChannelAppliance {
				t.Fatalf("event %d: %+v %+v", i, ev, p)
			}
		}
		// A retry of the same batch plus one new frame writes only the new one.
		fs = append(fs, u.frame(now, nil))
		res, err = r.svc.Relay(ctx, relay, u.id, fs)
		if err != nil || res.Accepted != 1 || res.Duplicates != 5 {
			t.Fatalf("retry: %v %+v", err, res)
		}
		// A batch of only old frames is a replay.
		if _, err := r.svc.Relay(ctx, relay, u.id, fs[:2]); !errors.Is(err, device.ErrReplayed) {
			t.Fatalf("replay: %v", err)
		}
		if n := len(r.events(t, api.EventDiagnostic)); n != 6 {
			t.Fatalf("%d diagnostic events after retries, want 6", n)
		}
		// The owner sees them live, oldest first.
		live, err := r.svc.Live(ctx, customer("joe"), u.id)
		if err != nil || len(live.Frames) != 6 || live.Frames[0].Seq != 1 || live.Frames[5].Seq != 6 {
			t.Fatalf("live: %v %+v", err, live)
		}
	})
}

func TestRelayRefusesBadFramesAndWritesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r := b.rig(t)
		ctx := context.Background()
		u := r.register(t, "PJ-100")
		v := r.register(t, "PJ-100")
		relay := r.pair(t, u, "joe")
		relayV := r.pair(t, v, "eve")
		now := r.clock.now()

		good := u.frame(now, map[string]float64{"lamp_temp_c": 90})
		tampered := u.frame(now, map[string]float64{"lamp_temp_c": 90})
		raw, _ := base64.StdEncoding.DecodeString(tampered.Frame)
		var f api.Frame
		_ = json.Unmarshal(raw, &f)
		f.Readings["lamp_temp_c"] = 20 // the phone "fixes" the reading
		raw, _ = json.Marshal(f)
		tampered.Frame = base64.StdEncoding.EncodeToString(raw)

		forged := device.SignFrame([]byte("the phone guessing a secret....."), api.Frame{Serial: u.serial, Seq: 99, At: now})
		otherUnit := v.frame(now, nil)
		hot := u.frame(now, map[string]float64{"lamp_temp_c": 900})
		nan := u.frame(now, map[string]float64{"fan_rpm": 1e9})
		future := u.frame(now.Add(time.Hour), nil)
		badSig := u.frame(now, nil)
		badSig.Sig = "!!!"
		zero := device.SignFrame(u.secret, api.Frame{Serial: u.serial, Seq: 0, At: now})
		extra := func() api.SignedFrame {
			b := []byte(`{"serial":"` + u.serial + `","seq":500,"at":"` + now.Format(time.RFC3339) + `","sneaky":1}`)
			s := device.SignFrame(u.secret, api.Frame{})
			s.Frame = base64.StdEncoding.EncodeToString(b)
			// Re-sign the exact bytes as the appliance would have.
			s.Sig = signRaw(u.secret, b)
			return s
		}()

		before := r.streamLen(t)
		for name, bad := range map[string]api.SignedFrame{
			"altered by the phone": tampered, "forged": forged, "another appliance's frame": otherUnit,
			"reading out of the model's range": hot, "reading out of any range": nan, "from the future": future,
			"sig not base64": badSig, "seq zero": zero, "unknown field": extra,
		} {
			_, err := r.svc.Relay(ctx, relay, u.id, []api.SignedFrame{good, bad})
			if !errors.Is(err, device.ErrBadFrame) {
				t.Errorf("%s: %v, want ErrBadFrame", name, err)
			}
		}
		// A relay token for another appliance: not found, nothing written.
		if _, err := r.svc.Relay(ctx, relayV, u.id, []api.SignedFrame{good}); !errors.Is(err, device.ErrNotFound) {
			t.Errorf("other appliance's token: %v", err)
		}
		// A customer token is not a relay token.
		if _, err := r.svc.Relay(ctx, customer("joe"), u.id, []api.SignedFrame{good}); !errors.Is(err, device.ErrForbidden) {
			t.Errorf("customer token: %v", err)
		}
		if _, err := r.svc.Relay(ctx, relay, u.id, nil); !errors.Is(err, device.ErrInvalid) {
			t.Errorf("empty batch: %v", err)
		}
		if after := r.streamLen(t); after != before {
			t.Fatalf("refused batches wrote %d events", after-before)
		}
		// The good frame was not marked seen by the refusals.
		if res, err := r.svc.Relay(ctx, relay, u.id, []api.SignedFrame{good}); err != nil || res.Accepted != 1 {
			t.Fatalf("good frame after refusals: %v %+v", err, res)
		}
	})
}

func TestFaultRulesAct(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r := b.rig(t)
		ctx := context.Background()
		u := r.register(t, "PJ-100")
		relay := r.pair(t, u, "joe")
		now := r.clock.now()

		if _, err := r.svc.Relay(ctx, relay, u.id, []api.SignedFrame{u.frame(now, nil, "E42")}); err != nil {
			t.Fatal(err)
		}
		faults := r.events(t, api.EventFaultDetected)
		parts := r.events(t, api.EventPartOrdered)
		if len(faults) != 1 || len(parts) != 1 || faults[0].TicketID == "" || parts[0].TicketID != faults[0].TicketID {
			t.Fatalf("faults %+v parts %+v", faults, parts)
		}
		tk := faults[0].TicketID
		var part api.PartOrderedPayload
		_ = json.Unmarshal(parts[0].Payload, &part)
		if part.SKU != "LAMP-100" || part.Quantity != 1 {
			t.Fatalf("part %+v", part)
		}
		diags := r.events(t, api.EventDiagnostic)
		if len(diags) != 1 || diags[0].TicketID != tk {
			t.Fatal("the frame that reported the fault is not on its ticket")
		}
		msgs := r.events(t, api.EventMessage)
		if len(msgs) != 1 || msgs[0].TicketID != tk || msgs[0].CustomerID != "joe" {
			t.Fatalf("owner not told: %+v", msgs)
		}
		got, err := r.tickets.Get(ctx, customerViewer("joe"), tk)
		if err != nil || got.ApplianceID != u.id || got.Priority != api.PriorityHigh {
			t.Fatalf("ticket %v %+v", err, got)
		}

		// The same fault again: attached to the same ticket, nothing reordered.
		if _, err := r.svc.Relay(ctx, relay, u.id, []api.SignedFrame{u.frame(now, nil, "E42"), u.frame(now, nil, "E42")}); err != nil {
			t.Fatal(err)
		}
		if len(r.events(t, api.EventFaultDetected)) != 1 || len(r.events(t, api.EventPartOrdered)) != 1 {
			t.Fatal("a repeated fault acted again")
		}
		for _, d := range r.events(t, api.EventDiagnostic) {
			if d.TicketID != tk {
				t.Fatal("a repeated fault's frame is not on the open ticket")
			}
		}
		// Another fault on the open ticket: dispatch with the skill, same ticket.
		if _, err := r.svc.Relay(ctx, relay, u.id, []api.SignedFrame{u.frame(now, nil, "E50")}); err != nil {
			t.Fatal(err)
		}
		disp := r.events(t, api.EventTechnicianDispatched)
		var tp api.TechnicianPayload
		if len(disp) != 1 || disp[0].TicketID != tk || json.Unmarshal(disp[0].Payload, &tp) != nil || tp.Skill != "optics" {
			t.Fatalf("dispatch %+v", disp)
		}
		// Once the ticket is closed, the fault opens a new one.
		closed := api.StatusClosed
		if _, err := r.tickets.Update(ctx, staffViewer(), tk, api.UpdateTicketRequest{Status: &closed}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.svc.Relay(ctx, relay, u.id, []api.SignedFrame{u.frame(now, nil, "E42")}); err != nil {
			t.Fatal(err)
		}
		faults = r.events(t, api.EventFaultDetected)
		if len(faults) != 3 || faults[2].TicketID == tk || faults[2].TicketID == "" {
			t.Fatalf("fault after close: %+v", faults)
		}
		// A sales lead for an unrepairable unit; notify-only stays off tickets.
		v := r.register(t, "TV-9")
		relayV := r.pair(t, v, "ann")
		if _, err := r.svc.Relay(ctx, relayV, v.id, []api.SignedFrame{v.frame(now, nil, "W01"), v.frame(now, nil, "E99"), v.frame(now, nil, "X123")}); err != nil {
			t.Fatal(err)
		}
		leads := r.events(t, api.EventSalesLeadOpened)
		if len(leads) != 1 || leads[0].CustomerID != "ann" || leads[0].TicketID == "" {
			t.Fatalf("sales lead %+v", leads)
		}
		notified := 0
		for _, f := range r.events(t, api.EventFaultDetected) {
			var p api.FaultPayload
			_ = json.Unmarshal(f.Payload, &p)
			if p.Code == "W01" {
				notified++
			}
			if p.Code == "X123" {
				t.Fatal("a fault without a rule acted")
			}
		}
		if notified != 1 {
			t.Fatalf("notify-only fault recorded %d times", notified)
		}
	})
}

func TestConsentGrants(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r := b.rig(t)
		ctx := context.Background()
		u := r.register(t, "PJ-100")
		relay := r.pair(t, u, "joe")
		if _, err := r.svc.Relay(ctx, relay, u.id, []api.SignedFrame{u.frame(r.clock.now(), map[string]float64{"lamp_temp_c": 70})}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.svc.Live(ctx, agent("ag1"), u.id); !errors.Is(err, device.ErrNoConsent) {
			t.Fatalf("agent without grant: %v", err)
		}
		if _, err := r.svc.Grant(ctx, customer("eve"), u.id, api.GrantRequest{}); !errors.Is(err, device.ErrNotFound) {
			t.Fatalf("grant by another: %v", err)
		}
		for _, h := range []int{-1, 169, 1000} {
			if _, err := r.svc.Grant(ctx, customer("joe"), u.id, api.GrantRequest{Hours: h}); !errors.Is(err, device.ErrInvalid) {
				t.Fatalf("grant of %d hours: %v", h, err)
			}
		}
		g, err := r.svc.Grant(ctx, customer("joe"), u.id, api.GrantRequest{})
		if err != nil || g.ExpiresAt.Sub(g.GrantedAt) != 72*time.Hour {
			t.Fatalf("default grant: %v %+v", err, g)
		}
		live, err := r.svc.Live(ctx, agent("ag1"), u.id)
		if err != nil || len(live.Frames) != 1 || live.Grant == nil {
			t.Fatalf("agent under grant: %v %+v", err, live)
		}
		// The grant runs out with time.
		r.clock.add(73 * time.Hour)
		if _, err := r.svc.Live(ctx, agent("ag1"), u.id); !errors.Is(err, device.ErrNoConsent) {
			t.Fatalf("after the grant ran out: %v", err)
		}
		if _, err := r.svc.Grant(ctx, customer("joe"), u.id, api.GrantRequest{Hours: 1}); err != nil {
			t.Fatal(err)
		}
		if err := r.svc.Revoke(ctx, customer("joe"), u.id); err != nil {
			t.Fatal(err)
		}
		if _, err := r.svc.Live(ctx, agent("ag1"), u.id); !errors.Is(err, device.ErrNoConsent) {
			t.Fatalf("after revoke: %v", err)
		}
		if _, err := r.svc.Live(ctx, customer("eve"), u.id); !errors.Is(err, device.ErrNotFound) {
			t.Fatalf("another customer: %v", err)
		}
	})
}

func TestSelfTestCommandThroughThePhone(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r := b.rig(t)
		ctx := context.Background()
		u := r.register(t, "PJ-100")
		relay := r.pair(t, u, "joe")
		req := api.CommandRequest{Kind: api.CommandSelfTest}
		if _, err := r.svc.Command(ctx, agent("ag1"), u.id, req); !errors.Is(err, device.ErrNoConsent) {
			t.Fatalf("command without ticket or grant: %v", err)
		}
		if _, err := r.svc.Grant(ctx, customer("joe"), u.id, api.GrantRequest{Hours: 2}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.svc.Command(ctx, agent("ag1"), u.id, api.CommandRequest{Kind: "format_disk"}); !errors.Is(err, device.ErrInvalid) {
			t.Fatalf("unknown command: %v", err)
		}
		if _, err := r.svc.Command(ctx, customer("joe"), u.id, req); !errors.Is(err, device.ErrNotFound) {
			t.Fatalf("customer command: %v", err)
		}
		cmd, err := r.svc.Command(ctx, agent("ag1"), u.id, req)
		if err != nil {
			t.Fatal(err)
		}
		if cmd.Sig != device.CommandSig(u.secret, cmd) {
			t.Fatal("command signature does not verify with the appliance secret")
		}
		list, err := r.svc.PendingCommands(ctx, relay, u.id)
		if err != nil || len(list.Commands) != 1 || list.Commands[0].ID != cmd.ID {
			t.Fatalf("pending: %v %+v", err, list)
		}
		if list, _ = r.svc.PendingCommands(ctx, relay, u.id); len(list.Commands) != 0 {
			t.Fatal("a command was handed out twice")
		}
		// The appliance answers with a frame the phone relays.
		if _, err := r.svc.Relay(ctx, relay, u.id, []api.SignedFrame{u.frame(r.clock.now(), map[string]float64{"self_test.passed": 1})}); err != nil {
			t.Fatal(err)
		}
		live, _ := r.svc.Live(ctx, agent("ag1"), u.id)
		if len(live.Frames) != 1 || live.Frames[0].Readings["self_test.passed"] != 1 {
			t.Fatalf("self-test result not visible: %+v", live)
		}
		for range 20 {
			if _, err := r.svc.Command(ctx, agent("ag1"), u.id, req); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := r.svc.Command(ctx, agent("ag1"), u.id, req); !errors.Is(err, device.ErrTooMany) {
			t.Fatalf("21st command with 20 pending: %v", err)
		}
		_ = auth.RoleDevice
	})
}
