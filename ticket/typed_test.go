package ticket_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/state/embedded"
	"github.com/switchboard/switchboard/ticket"
)

// TestAppendBatchTyped: typed payloads are stored as AppendBatch would
// store their JSON; a payload of another type's struct, or one that
// breaks its type's rules, fails the batch and writes nothing.
func TestAppendBatchTyped(t *testing.T) {
	ctx := context.Background()
	st, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := ticket.New(st)
	diag := api.DiagnosticPayload{ApplianceID: "ap_1", Serial: "SN1", Seq: 7, At: time.Unix(1_700_000_000, 0).UTC(), Readings: map[string]float64{"fan_rpm": 1200}}
	ev := api.Event{CustomerID: "alice", Type: api.EventDiagnostic, Channel: api.ChannelAppliance}
	got, err := ticket.AppendBatchTyped(ctx, svc, []api.Event{ev, ev}, []api.DiagnosticPayload{diag, diag})
	if err != nil {
		t.Fatal(err)
	}
	want, err := svc.AppendBatch(ctx, []api.Event{{CustomerID: "alice", Type: api.EventDiagnostic, Channel: api.ChannelAppliance, Payload: mustJSON(t, diag)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got[0].Payload) != string(want[0].Payload) || got[0].ID == "" || got[1].ID <= got[0].ID {
		t.Fatalf("typed %+v, untyped %s", got, want[0].Payload)
	}
	n, _ := st.XLen(ctx, ticket.StreamEvents)

	if _, err := ticket.AppendBatchTyped(ctx, svc, []api.Event{ev}, []api.MessagePayload{{Text: "hi"}}); !errors.Is(err, ticket.ErrInvalid) {
		t.Fatalf("a message payload for a diagnostic: %v", err)
	}
	msg := api.Event{CustomerID: "alice", Type: api.EventMessage}
	if _, err := ticket.AppendBatchTyped(ctx, svc, []api.Event{msg, msg}, []api.MessagePayload{{Text: "fine"}, {Text: ""}}); !errors.Is(err, ticket.ErrInvalid) {
		t.Fatalf("an empty message: %v", err)
	}
	if _, err := ticket.AppendBatchTyped(ctx, svc, []api.Event{msg}, []api.MessagePayload{}); !errors.Is(err, ticket.ErrInvalid) {
		t.Fatalf("no payload for an event: %v", err)
	}
	if after, _ := st.XLen(ctx, ticket.StreamEvents); after != n {
		t.Fatalf("refused batches wrote %d events", after-n)
	}
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestNoteDoesNotShowThroughToCustomer: an internal note written after
// the customer's last visible event changes neither the ticket's
// last_event_id and updated_at as the customer reads them, nor the order
// of the customer's ticket list; staff see it as the newest activity.
func TestNoteDoesNotShowThroughToCustomer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		now := time.Now().UTC()
		svc := ticket.New(b.st, ticket.WithClock(func() time.Time { return now }))
		older, err := svc.Open(ctx, alice, api.OpenTicketRequest{Subject: "washer", Message: "it leaks"})
		if err != nil {
			t.Fatal(err)
		}
		// Activity is ordered by the stream's millisecond: keep the
		// events in distinct ones.
		time.Sleep(3 * time.Millisecond)
		now = now.Add(time.Minute)
		newer, err := svc.Open(ctx, alice, api.OpenTicketRequest{Subject: "dryer", Message: "it squeaks"})
		if err != nil {
			t.Fatal(err)
		}
		before, err := svc.Get(ctx, alice, older.ID)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Millisecond)
		now = now.Add(time.Minute)
		note, err := svc.Append(ctx, api.Event{TicketID: older.ID, Type: api.EventNote, Actor: api.Actor{ID: "ann", Role: "agent"}, Payload: mustJSON(t, api.NotePayload{Text: "customer sounds upset"})})
		if err != nil {
			t.Fatal(err)
		}
		after, err := svc.Get(ctx, alice, older.ID)
		if err != nil {
			t.Fatal(err)
		}
		if after.LastEventID != before.LastEventID || !after.UpdatedAt.Equal(before.UpdatedAt) {
			t.Fatalf("customer sees activity %s at %v after a note, was %s at %v", after.LastEventID, after.UpdatedAt, before.LastEventID, before.UpdatedAt)
		}
		staff, err := svc.Get(ctx, agent, older.ID)
		if err != nil || staff.LastEventID != note.ID {
			t.Fatalf("staff see last event %s (%v), want the note %s", staff.LastEventID, err, note.ID)
		}
		list, err := svc.List(ctx, alice, ticket.ListOptions{})
		if err != nil || len(list.Tickets) != 2 || list.Tickets[0].ID != newer.ID {
			t.Fatalf("customer's list after a note: %+v %v, want %s first", list.Tickets, err, newer.ID)
		}
	})
}

// TestTimelineScanIsBounded: a customer reading a timeline of many notes
// they may not see gets short pages with a cursor, each having looked at
// a bounded number of events, and reading on finds every event they may
// see, once, in order, ending with no cursor.
func TestTimelineScanIsBounded(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		svc := ticket.New(b.st)
		tk, err := svc.Open(ctx, alice, api.OpenTicketRequest{Subject: "washer", Message: "it leaks"})
		if err != nil {
			t.Fatal(err)
		}
		const notes, limit = 250, 5 // a page looks at up to 20 × limit
		batch := make([]api.Event, notes)
		for i := range batch {
			batch[i] = api.Event{TicketID: tk.ID, Type: api.EventNote, Actor: api.Actor{ID: "ann", Role: "agent"}, Payload: mustJSON(t, api.NotePayload{Text: strconv.Itoa(i)})}
		}
		if _, err := svc.AppendBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
		last, err := svc.Post(ctx, alice, tk.ID, api.EventMessage, mustJSON(t, api.MessagePayload{Text: "any news?"}))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		after, pages := "", 0
		for {
			v, err := svc.Timeline(ctx, alice, tk.ID, after, limit)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, ev := range v.Events {
				if ev.Type == api.EventNote {
					t.Fatalf("the customer got a note: %+v", ev)
				}
				got = append(got, ev.ID)
			}
			if v.Next == "" {
				break
			}
			after = v.Next
		}
		// 2 events before the notes (opened, message), 250 notes, 1 after.
		if len(got) != 3 || got[2] != last.ID || pages < notes/(20*limit) {
			t.Fatalf("read %v in %d pages; want the 3 visible events, the last %s, in %d or more pages", got, pages, last.ID, notes/(20*limit))
		}
		// Staff see everything in full pages.
		v, err := svc.Timeline(ctx, agent, tk.ID, "", limit)
		if err != nil || len(v.Events) != limit || v.Next == "" {
			t.Fatalf("staff page: %d events, next %q, %v", len(v.Events), v.Next, err)
		}
	})
}
