package ticket_test

import (
	"context"
	"encoding/json"
	"errors"
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
