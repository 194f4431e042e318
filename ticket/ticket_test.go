package ticket_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/embedded"
	"github.com/switchboard/switchboard/state/redis"
	"github.com/switchboard/switchboard/ticket"
)

// backend is one state implementation under test.
type backend struct {
	st state.Store
	// node returns another node's handle on the same data: a second
	// client on the same Redis, or the same embedded store (one process
	// is all the embedded mode has).
	node func(t *testing.T) state.Store
}

// forEachBackend runs body against the embedded store and a real
// redis-server (nats-server's store_test habit: one body, every backend).
func forEachBackend(t *testing.T, body func(t *testing.T, b backend)) {
	t.Helper()
	t.Run("embedded", func(t *testing.T) {
		st, err := embedded.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		body(t, backend{st: st, node: func(*testing.T) state.Store { return st }})
	})
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		open := func(t *testing.T) state.Store {
			t.Helper()
			st, err := redis.New(context.Background(), redis.Config{URL: srv.URL()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
		body(t, backend{st: open(t), node: open})
	})
}

var (
	alice = ticket.Viewer{ID: "alice", Role: auth.RoleCustomer}
	agent = ticket.Viewer{ID: "ann", Role: auth.RoleAgent}
)

func raw(t testing.TB, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readAll pages a ticket timeline to its end with limit, as v.
func readAll(t *testing.T, svc *ticket.Service, v ticket.Viewer, ticketID string, limit int) []api.Event {
	t.Helper()
	return pageAll(t, limit, func(after string) ([]api.Event, string, error) {
		page, err := svc.Timeline(context.Background(), v, ticketID, after, limit)
		return page.Events, page.Next, err
	})
}

// readCustomer pages a customer timeline to its end with limit, as v.
func readCustomer(t *testing.T, svc *ticket.Service, v ticket.Viewer, customerID string, limit int) []api.Event {
	t.Helper()
	return pageAll(t, limit, func(after string) ([]api.Event, string, error) {
		page, err := svc.CustomerTimeline(context.Background(), v, customerID, after, limit)
		return page.Events, page.Next, err
	})
}

// pageAll follows a timeline's cursor from the start to its end; no page
// may be longer than limit (or MaxPage).
func pageAll(t *testing.T, limit int, page func(after string) ([]api.Event, string, error)) []api.Event {
	t.Helper()
	var all []api.Event
	after := ""
	for range 10_000 {
		evs, next, err := page(after)
		if err != nil {
			t.Fatal(err)
		}
		if bound := cmp.Or(limit, ticket.MaxPage); len(evs) > bound {
			t.Fatalf("page of %d with limit %d", len(evs), limit)
		}
		all = append(all, evs...)
		if next == "" {
			return all
		}
		after = next
	}
	t.Fatal("paging never ended")
	return nil
}

func idsOf(evs []api.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

// TestEventIDsIncrease: along a timeline, written by many writers at
// once, event IDs strictly increase and none is lost.
func TestEventIDsIncrease(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		svc := ticket.New(b.st)
		tk, err := svc.Open(ctx, alice, api.OpenTicketRequest{Subject: "projector"})
		if err != nil {
			t.Fatal(err)
		}
		const writers, each = 4, 15
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Half the writers are another node over the same data.
				node := svc
				if w%2 == 1 {
					node = ticket.New(b.node(t))
				}
				for i := range each {
					if _, err := node.Post(ctx, agent, tk.ID, api.EventMessage, raw(t, api.MessagePayload{Text: fmt.Sprintf("w%d-%d", w, i)})); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		for _, evs := range [][]api.Event{
			readAll(t, svc, ticket.System, tk.ID, ticket.MaxPage),
			readCustomer(t, svc, alice, "alice", 7),
		} {
			if len(evs) != 1+writers*each {
				t.Fatalf("%d events, want %d", len(evs), 1+writers*each)
			}
			for i := 1; i < len(evs); i++ {
				if state.CompareIDs(evs[i-1].ID, evs[i].ID) >= 0 {
					t.Fatalf("event %d: %s after %s", i, evs[i].ID, evs[i-1].ID)
				}
			}
		}
		got, err := svc.Get(ctx, alice, tk.ID)
		if err != nil {
			t.Fatal(err)
		}
		all := readAll(t, svc, ticket.System, tk.ID, ticket.MaxPage)
		if got.LastEventID != all[len(all)-1].ID {
			t.Fatalf("LastEventID %s, last event %s", got.LastEventID, all[len(all)-1].ID)
		}
	})
}

// TestPagingAfterHasNoGapOrDuplicate: reading a timeline page by page
// with ?after, at every page size, gives exactly the events of one read,
// also when the viewer's hidden notes sit between them and many events
// share one millisecond.
func TestPagingAfterHasNoGapOrDuplicate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		svc := ticket.New(b.st)
		tk, err := svc.Open(ctx, alice, api.OpenTicketRequest{Subject: "washer"})
		if err != nil {
			t.Fatal(err)
		}
		// Runs of notes of every length between messages.
		for i := range 30 {
			typ, payload := api.EventMessage, raw(t, api.MessagePayload{Text: strconv.Itoa(i)})
			if i%5 != 0 && i%7 != 0 {
				typ, payload = api.EventNote, raw(t, api.NotePayload{Text: strconv.Itoa(i)})
			}
			if _, err := svc.Post(ctx, agent, tk.ID, typ, payload); err != nil {
				t.Fatal(err)
			}
		}
		all := readAll(t, svc, ticket.System, tk.ID, ticket.MaxPage)
		var visible []api.Event
		for _, ev := range all {
			if ev.Type != api.EventNote {
				visible = append(visible, ev)
			}
		}
		if len(all) != 31 || len(visible) == len(all) {
			t.Fatalf("setup: %d events, %d visible", len(all), len(visible))
		}
		for _, limit := range []int{1, 2, 3, 4, 5, 7, 11, 0} {
			for _, c := range []struct {
				name string
				v    ticket.Viewer
				want []api.Event
			}{{"staff", agent, all}, {"customer", alice, visible}} {
				if got := idsOf(readAll(t, svc, c.v, tk.ID, limit)); fmt.Sprint(got) != fmt.Sprint(idsOf(c.want)) {
					t.Fatalf("%s, limit %d: paged\n%v\nwant\n%v", c.name, limit, got, idsOf(c.want))
				}
				if got := idsOf(readCustomer(t, svc, c.v, "alice", limit)); fmt.Sprint(got) != fmt.Sprint(idsOf(c.want)) {
					t.Fatalf("%s customer timeline, limit %d: paged\n%v\nwant\n%v", c.name, limit, got, idsOf(c.want))
				}
			}
		}
		// Starting after any event gives exactly what follows it.
		for i, ev := range all {
			page, err := svc.Timeline(ctx, agent, tk.ID, ev.ID, ticket.MaxPage)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(idsOf(page.Events)) != fmt.Sprint(idsOf(all[i+1:])) {
				t.Fatalf("after %s: %v, want %v", ev.ID, idsOf(page.Events), idsOf(all[i+1:]))
			}
		}
	})
}

// TestAppendIsAtomic: the event and its timeline entries are one write,
// so the log and the timelines agree after every Append.
func TestAppendIsAtomic(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		svc := ticket.New(b.st)
		tk, err := svc.Open(ctx, alice, api.OpenTicketRequest{Subject: "dryer", Message: "it squeaks"})
		if err != nil {
			t.Fatal(err)
		}
		n, err := b.st.XLen(ctx, ticket.StreamEvents)
		if err != nil {
			t.Fatal(err)
		}
		evs := readAll(t, svc, ticket.System, tk.ID, ticket.MaxPage)
		cust := readCustomer(t, svc, alice, "alice", ticket.MaxPage)
		if int64(len(evs)) != n || len(cust) != len(evs) {
			t.Fatalf("log holds %d events, ticket timeline %d, customer timeline %d", n, len(evs), len(cust))
		}
		got, err := svc.Get(ctx, alice, tk.ID)
		if err != nil || got.LastEventID != evs[len(evs)-1].ID {
			t.Fatalf("ticket %+v, %v; want last event %s", got, err, evs[len(evs)-1].ID)
		}
	})
}

// TestFollowUpFiresExactlyOnce: two nodes, several goroutines each, find
// the same follow-ups due at once; each fires exactly once, also the one
// whose firing a crashed node already wrote.
func TestFollowUpFiresExactlyOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		svc := ticket.New(b.st)
		later := func() time.Time { return time.Now().Add(2 * time.Hour) } // every follow-up is due
		nodes := []*ticket.Service{
			ticket.New(b.node(t), ticket.WithClock(later)),
			ticket.New(b.node(t), ticket.WithClock(later)),
		}
		var tickets []string
		want := map[string]string{} // follow-up → ticket
		for i := range 3 {
			tk, err := svc.Open(ctx, alice, api.OpenTicketRequest{Subject: "oven " + strconv.Itoa(i)})
			if err != nil {
				t.Fatal(err)
			}
			tickets = append(tickets, tk.ID)
			for j := range 4 {
				fu, err := svc.ScheduleFollowUp(ctx, agent, tk.ID, api.FollowUpRequest{
					At: time.Now().Add(time.Hour + time.Duration(j)*time.Minute), Action: api.FollowUpReminder, Note: "call back"})
				if err != nil {
					t.Fatal(err)
				}
				want[fu.ID] = tk.ID
				if i == 0 && j == 0 {
					// A node appended this one's follow_up_due and died
					// before it could mark it fired.
					if _, err := svc.Append(ctx, api.Event{TicketID: tk.ID, Type: api.EventFollowUpDue, Actor: api.Actor{ID: "system", Role: "system"},
						Payload: raw(t, api.FollowUpPayload{FollowUpID: fu.ID, At: fu.At, Action: fu.Action})}); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		// Not due on the real clock: nothing fires.
		if err := svc.FireDue(ctx, "now"); err != nil {
			t.Fatal(err)
		}

		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- nodes[g%2].FireDue(ctx, "node-"+strconv.Itoa(g%2))
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		// A second round, long after, fires nothing more.
		for _, n := range nodes {
			if err := n.FireDue(ctx, "again"); err != nil {
				t.Fatal(err)
			}
		}
		fired := map[string]int{}
		for _, id := range tickets {
			for _, ev := range readAll(t, svc, ticket.System, id, ticket.MaxPage) {
				if ev.Type != api.EventFollowUpDue {
					continue
				}
				var p api.FollowUpPayload
				if err := json.Unmarshal(ev.Payload, &p); err != nil {
					t.Fatal(err)
				}
				if want[p.FollowUpID] != id {
					t.Fatalf("follow-up %s fired on ticket %s", p.FollowUpID, id)
				}
				fired[p.FollowUpID]++
			}
		}
		for id := range want {
			if fired[id] != 1 {
				t.Errorf("follow-up %s fired %d times, want exactly once", id, fired[id])
			}
		}
	})
}

// TestAppendSeesTicketChangedByAnotherNode: node A appends to a ticket
// (and so has it decoded), node B changes its queue and status, and A's
// next event carries B's values: A's decoded copy is not used once the
// stored record differs.
func TestAppendSeesTicketChangedByAnotherNode(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		a, other := ticket.New(b.st), ticket.New(b.node(t))
		tk, err := a.Open(ctx, alice, api.OpenTicketRequest{Subject: "oven"})
		if err != nil {
			t.Fatal(err)
		}
		msg := api.Event{TicketID: tk.ID, Type: api.EventMessage, Payload: raw(t, api.MessagePayload{Text: "hello"})}
		if ev, err := a.Append(ctx, msg); err != nil || ev.Queue != tk.Queue {
			t.Fatalf("first append: %+v, %v", ev, err)
		}
		queue, status := "ovens", api.StatusPending
		if _, err := other.Update(ctx, agent, tk.ID, api.UpdateTicketRequest{Queue: &queue, Status: &status}); err != nil {
			t.Fatal(err)
		}
		ev, err := a.Append(ctx, msg)
		if err != nil || ev.Queue != queue || ev.Status != status {
			t.Fatalf("append after the change: queue %q status %q, %v; want %q %q", ev.Queue, ev.Status, err, queue, status)
		}
	})
}
