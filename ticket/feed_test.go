package ticket_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/state/embedded"
	"github.com/switchboard/switchboard/ticket"
)

// checkGoroutines fails the test if goroutines started during it are
// still running after its cleanups: register it first, so it runs last.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				n := runtime.Stack(buf, true)
				t.Errorf("goroutines leaked: %d > %d\n%s", runtime.NumGoroutine(), before, buf[:n])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

type feedEnv struct {
	svc *ticket.Service
	hub *ticket.Hub
}

// newFeed runs a hub over an embedded store; everything stops in cleanup.
func newFeed(t *testing.T, cfg ticket.HubConfig) *feedEnv {
	t.Helper()
	checkGoroutines(t)
	st, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := ticket.New(st)
	hub := ticket.NewHub(svc, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hub.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return &feedEnv{svc: svc, hub: hub}
}

func (e *feedEnv) open(t *testing.T, customer, queue string) api.Ticket {
	t.Helper()
	tk, err := e.svc.Open(context.Background(), ticket.System, api.OpenTicketRequest{CustomerID: customer, Subject: "broken", Queue: queue})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func (e *feedEnv) post(t testing.TB, tk string, typ api.EventType, text string) api.Event {
	t.Helper()
	p, _ := json.Marshal(map[string]string{"text": text})
	ev, err := e.svc.Append(context.Background(), api.Event{TicketID: tk, Type: typ, Actor: api.Actor{ID: "system", Role: "system"}, Payload: p})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func (e *feedEnv) sub(t *testing.T, v ticket.Viewer, f ticket.Filter, after string) *ticket.Subscription {
	t.Helper()
	s, err := e.hub.Subscribe(v, f, after)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// next waits for the next event of s.
func next(t *testing.T, s *ticket.Subscription) *api.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		f, err := s.Next(ctx, time.Second)
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		if f != nil {
			return f.Event
		}
	}
}

// quiet checks that s has nothing (more) within a short while.
func quiet(t *testing.T, s *ticket.Subscription) {
	t.Helper()
	f, err := s.Next(context.Background(), 100*time.Millisecond)
	if err != nil || f != nil {
		t.Fatalf("expected nothing, got %+v %v", f, err)
	}
}

func TestFeedVisibilityAndFilters(t *testing.T) {
	e := newFeed(t, ticket.HubConfig{})
	joe, ann := ticket.Viewer{ID: "joe", Role: auth.RoleCustomer}, ticket.Viewer{ID: "ann", Role: auth.RoleCustomer}
	subJoe := e.sub(t, joe, ticket.Filter{}, "")
	subJoeSpoof := e.sub(t, joe, ticket.Filter{Customer: "ann"}, "") // a filter never widens
	subAnn := e.sub(t, ann, ticket.Filter{}, "")
	subAgent := e.sub(t, ticket.Viewer{ID: "a1", Role: auth.RoleAgent}, ticket.Filter{}, "")
	subRepairs := e.sub(t, ticket.Viewer{ID: "a2", Role: auth.RoleAgent, Queues: []string{"repairs"}}, ticket.Filter{}, "")
	subBilling := e.sub(t, ticket.Viewer{ID: "a3", Role: auth.RoleAdmin}, ticket.Filter{Queue: "billing"}, "")
	subTech := e.sub(t, ticket.Viewer{ID: "tom", Role: auth.RoleTechnician}, ticket.Filter{}, "")

	tj := e.open(t, "joe", "repairs")
	ta := e.open(t, "ann", "billing")
	for _, s := range []*ticket.Subscription{subJoe, subRepairs} {
		if ev := next(t, s); ev.TicketID != tj.ID || ev.Type != api.EventTicketOpened {
			t.Fatalf("got %+v", ev)
		}
	}
	for _, s := range []*ticket.Subscription{subAnn, subBilling} {
		if ev := next(t, s); ev.TicketID != ta.ID {
			t.Fatalf("got %+v", ev)
		}
	}
	subTicket := e.sub(t, ticket.Viewer{ID: "a1", Role: auth.RoleAgent}, ticket.Filter{Ticket: tj.ID}, "")
	subOpen := e.sub(t, ticket.Viewer{ID: "a1", Role: auth.RoleAgent}, ticket.Filter{Status: api.StatusPending}, "")

	note := e.post(t, tj.ID, api.EventNote, "customer is difficult")
	msg := e.post(t, tj.ID, api.EventMessage, "hello joe")
	if ev := next(t, subJoe); ev.ID != msg.ID { // the note is skipped
		t.Fatalf("joe got %s (%s), want the message %s", ev.ID, ev.Type, msg.ID)
	}
	for _, s := range []*ticket.Subscription{subRepairs, subTicket} {
		if ev := next(t, s); ev.ID != note.ID {
			t.Fatalf("staff got %+v, want the note", ev)
		}
	}
	// The agent without scopes saw all four events, in order.
	var ids []string
	for range 4 {
		ids = append(ids, next(t, subAgent).ID)
	}
	if ids[2] != note.ID || ids[3] != msg.ID {
		t.Fatalf("agent order %v", ids)
	}

	// Dispatch tom to joe's ticket: he sees its events from then on.
	tom := "tom"
	pending := api.StatusPending
	if _, err := e.svc.Update(context.Background(), ticket.System, tj.ID, api.UpdateTicketRequest{Technician: &tom, Status: &pending}); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, subTech); ev.Type != api.EventStatusChanged || ev.TicketID != tj.ID {
		t.Fatalf("technician got %+v", ev)
	}
	if ev := next(t, subOpen); ev.Type != api.EventStatusChanged || ev.Status != api.StatusPending {
		t.Fatalf("status filter got %+v", ev)
	}
	e.post(t, ta.ID, api.EventMessage, "ann's")
	if ev := next(t, subBilling); ev.TicketID != ta.ID {
		t.Fatalf("billing got %+v", ev)
	}
	for _, s := range []*ticket.Subscription{subAnn} {
		next(t, s)
	}
	// Nobody got anything that was not theirs.
	for name, s := range map[string]*ticket.Subscription{"joe-spoof": subJoeSpoof, "ann": subAnn, "tech": subTech, "billing": subBilling} {
		t.Run(name, func(t *testing.T) { quiet(t, s) })
	}
}

func TestFeedSubscribeChecks(t *testing.T) {
	e := newFeed(t, ticket.HubConfig{})
	cases := []struct {
		v     ticket.Viewer
		f     ticket.Filter
		after string
		want  error
	}{
		{ticket.Viewer{ID: "d", Role: auth.RoleDevice}, ticket.Filter{}, "", ticket.ErrForbidden},
		{ticket.Viewer{ID: "a", Role: auth.RoleAgent}, ticket.Filter{Status: "weird"}, "", ticket.ErrInvalid},
		{ticket.Viewer{ID: "a", Role: auth.RoleAgent}, ticket.Filter{Queue: strings.Repeat("q", 300)}, "", ticket.ErrInvalid},
		{ticket.Viewer{ID: "a", Role: auth.RoleAgent}, ticket.Filter{}, "not-an-id", ticket.ErrInvalid},
	}
	for _, c := range cases {
		if _, err := e.hub.Subscribe(c.v, c.f, c.after); !errors.Is(err, c.want) {
			t.Errorf("%+v %+v %q: %v, want %v", c.v, c.f, c.after, err, c.want)
		}
	}
}

// TestFeedResumeNoGapNoDuplicate appends continuously while one client
// keeps disconnecting and resuming from the last ID it saw; what it gets
// across all its connections must be exactly the stream, in order.
func TestFeedResumeNoGapNoDuplicate(t *testing.T) {
	e := newFeed(t, ticket.HubConfig{})
	agent := ticket.Viewer{ID: "a", Role: auth.RoleAgent}
	tk := e.open(t, "joe", "repairs")
	first := e.post(t, tk.ID, api.EventMessage, "start")

	const total = 600
	var (
		mu       sync.Mutex
		appended []string
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for w := range 3 { // concurrent appenders: IDs interleave, commits batch
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range total / 3 {
				ev := e.post(t, tk.ID, api.EventMessage, fmt.Sprintf("w%d-%d", w, i))
				mu.Lock()
				appended = append(appended, ev.ID)
				mu.Unlock()
			}
		}()
	}

	var got []string
	last := first.ID
	for conn := 0; len(got) < total; conn++ {
		s, err := e.hub.Subscribe(agent, ticket.Filter{}, last)
		if err != nil {
			t.Fatal(err)
		}
		// Read a few events per connection, then drop it.
		for n := 0; n < 1+conn%37 && len(got) < total; n++ {
			rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
			f, err := s.Next(rctx, time.Second)
			rcancel()
			if err != nil {
				t.Fatalf("connection %d: %v", conn, err)
			}
			if f == nil {
				continue
			}
			got = append(got, f.Event.ID)
			last = f.Event.ID
		}
		s.Close()
	}
	wg.Wait()
	// Stream order is ID order; appenders finished in any order.
	mu.Lock()
	defer mu.Unlock()
	want := append([]string(nil), appended...)
	sortIDs(want)
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d: got %s, want %s", i, got[i], want[i])
		}
	}
}

func sortIDs(ids []string) {
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && cmpID(ids[j-1], ids[j]) > 0; j-- {
			ids[j-1], ids[j] = ids[j], ids[j-1]
		}
	}
}

func cmpID(a, b string) int {
	var am, as, bm, bs uint64
	fmt.Sscanf(a, "%d-%d", &am, &as)
	fmt.Sscanf(b, "%d-%d", &bm, &bs)
	switch {
	case am != bm && am < bm, am == bm && as < bs:
		return -1
	case am == bm && as == bs:
		return 0
	}
	return 1
}

func TestFeedSlowConsumerIsCutOff(t *testing.T) {
	const buffer = 16
	e := newFeed(t, ticket.HubConfig{Buffer: buffer})
	agent := ticket.Viewer{ID: "a", Role: auth.RoleAgent}
	tk := e.open(t, "joe", "repairs")
	slow := e.sub(t, agent, ticket.Filter{}, "")
	fast := e.sub(t, agent, ticket.Filter{}, "")
	for i := range buffer * 4 {
		ev := e.post(t, tk.ID, api.EventMessage, fmt.Sprint(i))
		if got := next(t, fast); got.ID != ev.ID {
			t.Fatalf("fast consumer got %s, want %s", got.ID, ev.ID)
		}
	}
	select {
	case <-slow.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("slow consumer not cut off")
	}
	if _, err := slow.Next(context.Background(), time.Second); !errors.Is(err, ticket.ErrSlowConsumer) {
		t.Fatalf("slow consumer: %v", err)
	}
	if st := e.hub.Stats(); st.Subscribers != 1 || st.SlowConsumers != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFeedSlowConsumerByBytes(t *testing.T) {
	e := newFeed(t, ticket.HubConfig{BufferBytes: 8 << 10})
	tk := e.open(t, "joe", "repairs")
	slow := e.sub(t, ticket.Viewer{ID: "a", Role: auth.RoleAgent}, ticket.Filter{}, "")
	big := strings.Repeat("x", 3000)
	for range 4 {
		e.post(t, tk.ID, api.EventMessage, big)
	}
	select {
	case <-slow.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("byte cap did not cut the consumer off")
	}
}

func TestFeedReplayBound(t *testing.T) {
	e := newFeed(t, ticket.HubConfig{MaxReplay: 300})
	tk := e.open(t, "joe", "repairs")
	from := e.post(t, tk.ID, api.EventMessage, "from")
	for i := range 301 {
		e.post(t, tk.ID, api.EventMessage, fmt.Sprint(i))
	}
	s := e.sub(t, ticket.Viewer{ID: "a", Role: auth.RoleAgent}, ticket.Filter{}, from.ID)
	var err error
	for err == nil {
		_, err = s.Next(context.Background(), time.Second)
	}
	if !errors.Is(err, ticket.ErrReplayTooLong) || !errors.Is(s.Err(), ticket.ErrReplayTooLong) {
		t.Fatalf("got %v / %v, want ErrReplayTooLong", err, s.Err())
	}
	// Within the bound, a resume replays and then goes live.
	s2 := e.sub(t, ticket.Viewer{ID: "a", Role: auth.RoleAgent}, ticket.Filter{Ticket: tk.ID}, e.post(t, tk.ID, api.EventMessage, "x").ID)
	live := e.post(t, tk.ID, api.EventMessage, "live")
	if ev := next(t, s2); ev.ID != live.ID {
		t.Fatalf("got %s, want %s", ev.ID, live.ID)
	}
}

func TestFeedStopEndsSubscriptions(t *testing.T) {
	checkGoroutines(t)
	st, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hub := ticket.NewHub(ticket.New(st), ticket.HubConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hub.Run(ctx) }()
	s, err := hub.Subscribe(ticket.Viewer{ID: "a", Role: auth.RoleAgent}, ticket.Filter{}, "")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(context.Background(), time.Second); !errors.Is(err, ticket.ErrHubStopped) {
		t.Fatalf("next after stop: %v", err)
	}
	if _, err := hub.Subscribe(ticket.Viewer{ID: "a", Role: auth.RoleAgent}, ticket.Filter{}, ""); !errors.Is(err, ticket.ErrHubStopped) {
		t.Fatalf("subscribe after stop: %v", err)
	}
	s.Close()
}
