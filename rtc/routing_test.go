package rtc

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/state/embedded"
	"github.com/switchboard/switchboard/ticket"
)

type routeEnv struct {
	svc     *Service
	tickets *ticket.Service
	now     time.Time
}

func newRouteEnv(t *testing.T) *routeEnv {
	t.Helper()
	st, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tk := ticket.New(st)
	svc, err := New(Config{Node: "n1", RingTimeout: 10 * time.Second}, st, tk)
	if err != nil {
		t.Fatal(err)
	}
	e := &routeEnv{svc: svc, tickets: tk, now: time.Now()}
	svc.now = func() time.Time { return e.now }
	return e
}

func (e *routeEnv) place(t *testing.T, cust string) api.Call {
	t.Helper()
	tk, err := e.tickets.Open(context.Background(), ticket.System, api.OpenTicketRequest{CustomerID: cust, Subject: "s", Queue: "support"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.svc.Place(context.Background(), User{ID: cust, Role: auth.RoleCustomer}, api.PlaceCallRequest{TicketID: tk.ID, Media: api.MediaAudio})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *routeEnv) available(t *testing.T, agent string) {
	t.Helper()
	if _, err := e.svc.SetStatus(context.Background(), User{ID: agent, Role: auth.RoleAgent}, api.AgentAvailable); err != nil {
		t.Fatal(err)
	}
	e.now = e.now.Add(time.Second) // distinct idle-since times
}

func (e *routeEnv) state(t *testing.T, id string) *callRecord {
	t.Helper()
	rec, err := e.svc.load(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestRoutingLongestIdleRingTimeoutDecline(t *testing.T) {
	e := newRouteEnv(t)
	ctx := context.Background()
	c := e.place(t, "joe")
	if c.State != api.CallQueued || c.Position != 1 || c.ExpectedWaitSeconds == 0 {
		t.Fatalf("queued call %+v", c)
	}
	e.available(t, "ann") // idle longest
	e.available(t, "bob")
	e.available(t, "cid")
	if err := e.svc.route(ctx); err != nil {
		t.Fatal(err)
	}
	if r := e.state(t, c.ID); r.State != api.CallRinging || r.Agent != "ann" {
		t.Fatalf("rang %s (%s), want ann", r.Agent, r.State)
	}
	// Another agent may not answer it.
	if _, err := e.svc.Answer(ctx, User{ID: "bob", Role: auth.RoleAgent}, c.ID); err == nil {
		t.Fatal("bob answered a call ringing ann")
	}
	// ann lets it ring out: she goes away, bob (next longest idle) rings.
	e.now = e.now.Add(11 * time.Second)
	if err := e.svc.expireRings(ctx); err != nil {
		t.Fatal(err)
	}
	if a, _ := e.svc.Agent(ctx, "ann"); a.Status != api.AgentAway {
		t.Fatalf("ann after ring timeout: %+v", a)
	}
	if err := e.svc.route(ctx); err != nil {
		t.Fatal(err)
	}
	if r := e.state(t, c.ID); r.Agent != "bob" {
		t.Fatalf("after timeout rang %s, want bob", r.Agent)
	}
	// bob declines: cid rings; bob stays available.
	if err := e.svc.Decline(ctx, User{ID: "bob", Role: auth.RoleAgent}, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.route(ctx); err != nil {
		t.Fatal(err)
	}
	if r := e.state(t, c.ID); r.Agent != "cid" {
		t.Fatalf("after decline rang %s, want cid", r.Agent)
	}
	if a, _ := e.svc.Agent(ctx, "bob"); a.Status != api.AgentAvailable || a.Call != "" {
		t.Fatalf("bob after decline: %+v", a)
	}
	got, err := e.svc.Answer(ctx, User{ID: "cid", Role: auth.RoleAgent}, c.ID)
	if err != nil || got.State != api.CallActive {
		t.Fatalf("answer: %+v %v", got, err)
	}
	e.now = e.now.Add(90 * time.Second)
	ended, err := e.svc.End(ctx, User{ID: "joe", Role: auth.RoleCustomer}, c.ID)
	if err != nil || ended.State != api.CallEnded || ended.HungUpBy != "joe" {
		t.Fatalf("end: %+v %v", ended, err)
	}
	// cid is idle again, from now: last in line behind bob.
	if a, _ := e.svc.Agent(ctx, "cid"); a.Status != api.AgentAvailable || a.Call != "" || !a.IdleSince.Equal(e.now.UTC()) {
		t.Fatalf("cid after the call: %+v", a)
	}
}

func TestAbandonAndCallBack(t *testing.T) {
	e := newRouteEnv(t)
	ctx := context.Background()
	joe := User{ID: "joe", Role: auth.RoleCustomer}
	c1 := e.place(t, "joe")
	c2 := e.place(t, "joe")
	if c2.Position != 2 {
		t.Fatalf("second call position %d", c2.Position)
	}
	if _, err := e.svc.End(ctx, User{ID: "eve", Role: auth.RoleCustomer}, c1.ID); err != ErrNotFound {
		t.Fatalf("someone else abandoned: %v", err)
	}
	got, err := e.svc.End(ctx, joe, c1.ID)
	if err != nil || got.State != api.CallMissed || got.EndReason != api.MissAbandoned {
		t.Fatalf("abandon: %+v %v", got, err)
	}
	if c, _ := e.svc.Get(ctx, joe, c2.ID); c.Position != 1 {
		t.Fatalf("position after abandon: %d", c.Position)
	}
	call, fu, err := e.svc.CallBack(ctx, joe, c2.ID, api.CallBackRequest{})
	if err != nil || call.EndReason != api.MissCallBack || fu.Action != api.FollowUpCallBack {
		t.Fatalf("call-back: %+v %+v %v", call, fu, err)
	}
	if _, _, err := e.svc.CallBack(ctx, joe, c2.ID, api.CallBackRequest{}); err == nil {
		t.Fatal("a second call-back on an ended call")
	}
}
