package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/redistest"
)

// TestStreamAcrossNodesOnRedis runs two gateway nodes on one real
// redis-server: an event posted through node A reaches a live WebSocket
// subscriber on node B (both hubs tail the same Redis Stream).
func TestStreamAcrossNodesOnRedis(t *testing.T) {
	rs := redistest.Start(t)
	data := t.TempDir() // shared: both nodes sign with the same key
	a, _, _ := startServe(t, data, "--redis-url", rs.URL())
	b, _, _ := startServe(t, data, "--redis-url", rs.URL())

	token := func(sub, role string) string {
		var stdout bytes.Buffer
		if code := run(t.Context(), []string{"token", "--sub", sub, "--role", role, "--data", data}, &stdout, &bytes.Buffer{}, env()); code != 0 {
			t.Fatal("token failed")
		}
		return strings.TrimSpace(stdout.String())
	}
	joe, agent := token("joe", "customer"), token("amy", "agent")
	call := func(method, path string, body any, out any) {
		t.Helper()
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, "http://"+a+path, bytes.NewReader(raw))
		req.Header.Set("Authorization", "Bearer "+joe)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode != 201 {
			t.Fatalf("%s %s: %d", method, path, res.StatusCode)
		}
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	var tk api.Ticket
	call("POST", "/v1/tickets", api.OpenTicketRequest{Subject: "projector broken"}, &tk)

	// Subscribe on B from the ticket's first event, so the subscription
	// is certainly in place before the next event, however slow the dial.
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+b+"/v1/stream?access_token="+agent+"&ticket="+tk.ID+"&after="+tk.LastEventID, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	read := func() api.Event {
		t.Helper()
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		var ev api.Event
		if err := ws.ReadJSON(&ev); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	for i, text := range []string{"first", "second"} {
		var posted api.Event
		call("POST", "/v1/tickets/"+tk.ID+"/events", api.PostEventRequest{Type: api.EventMessage, Payload: json.RawMessage(`{"text":"` + text + `"}`)}, &posted)
		start := time.Now()
		got := read()
		if got.ID != posted.ID || !strings.Contains(string(got.Payload), text) {
			t.Fatalf("event %d: node B delivered %+v, want %s", i, got, posted.ID)
		}
		// The second was appended after the first was read: it came live.
		t.Logf("%s: posted on A, delivered on B in %v", text, time.Since(start))
	}
}
