package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/gateway"
	"github.com/switchboard/switchboard/ticket"
)

// Tests of the unified ticket stream through the real gateway. Every
// refusal is checked twice: the problem document, and that nothing was
// written (the event log and the ticket's timeline are unchanged).

// scopedToken mints an access token carrying scopes (queue:NAME).
func (e *env) scopedToken(t testing.TB, sub string, role auth.Role, scopes ...string) string {
	t.Helper()
	tok, _, err := e.issuer.Access(sub, role, scopes, 0)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// open opens a ticket over HTTP as tok.
func (e *env) open(t testing.TB, tok string, req api.OpenTicketRequest) api.Ticket {
	t.Helper()
	var tk api.Ticket
	decodeJSON(t, e.do(t, "POST", "/v1/tickets", tok, mustJSON(t, req)), 201, &tk)
	if tk.ID == "" || tk.Status != api.StatusOpen {
		t.Fatalf("opened %+v", tk)
	}
	return tk
}

// post posts one event and expects it accepted.
func (e *env) post(t testing.TB, tok, ticketID string, typ api.EventType, payload any) api.Event {
	t.Helper()
	var ev api.Event
	body := mustJSON(t, api.PostEventRequest{Type: typ, Payload: mustJSON(t, payload)})
	decodeJSON(t, e.do(t, "POST", "/v1/tickets/"+ticketID+"/events", tok, body), 201, &ev)
	return ev
}

// view reads a whole ticket timeline as tok, following Next.
func (e *env) view(t testing.TB, tok, ticketID string) (api.Ticket, []api.Event) {
	t.Helper()
	var all []api.Event
	var tk api.Ticket
	after := ""
	for range 1000 {
		var v api.TicketView
		decodeJSON(t, e.do(t, "GET", "/v1/tickets/"+ticketID+"?after="+url.QueryEscape(after), tok, nil), 200, &v)
		tk = v.Ticket
		all = append(all, v.Events...)
		if v.Next == "" {
			return tk, all
		}
		after = v.Next
	}
	t.Fatal("timeline never ended")
	return tk, nil
}

// customerTL reads a whole customer timeline as tok, following Next.
func (e *env) customerTL(t testing.TB, tok, customerID string) []api.Event {
	t.Helper()
	var all []api.Event
	after := ""
	for range 1000 {
		var tl api.Timeline
		decodeJSON(t, e.do(t, "GET", "/v1/customers/"+customerID+"/timeline?after="+url.QueryEscape(after), tok, nil), 200, &tl)
		all = append(all, tl.Events...)
		if tl.Next == "" {
			return all
		}
		after = tl.Next
	}
	t.Fatal("timeline never ended")
	return nil
}

// logLen is the number of events in the one event log: the strongest
// "nothing was written" check there is.
func (e *env) logLen(t testing.TB) int64 {
	t.Helper()
	n, err := e.store.XLen(context.Background(), ticket.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// unchanged snapshots the event log and one ticket's timeline (as an
// admin sees it); the returned func fails the test if either moved.
func (e *env) unchanged(t testing.TB, ticketID string) func() {
	t.Helper()
	root := e.token(t, "root", auth.RoleAdmin)
	n := e.logLen(t)
	_, before := e.view(t, root, ticketID)
	return func() {
		t.Helper()
		if got := e.logLen(t); got != n {
			t.Fatalf("event log grew from %d to %d on a refused request", n, got)
		}
		if _, after := e.view(t, root, ticketID); len(after) != len(before) {
			t.Fatalf("timeline of %s went from %d to %d events on a refused request", ticketID, len(before), len(after))
		}
	}
}

func countType(evs []api.Event, typ api.EventType) int {
	n := 0
	for _, ev := range evs {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

func ids(evs []api.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

// TestOtherCustomersTicketIsNotFound: to customer A, customer B's ticket
// does not exist, whatever A does to it: 404 (never 403, which would
// confirm it exists), the same answer as for a ticket that does not.
func TestOtherCustomersTicketIsNotFound(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	alice := e.token(t, "alice", auth.RoleCustomer)
	bob := e.token(t, "bob", auth.RoleCustomer)
	e.open(t, alice, api.OpenTicketRequest{Subject: "alice's printer"})
	tb := e.open(t, bob, api.OpenTicketRequest{Subject: "bob's projector", Message: "it flickers"})
	check := e.unchanged(t, tb.ID)

	msg := mustJSON(t, api.PostEventRequest{Type: api.EventMessage, Payload: json.RawMessage(`{"text":"mine now"}`)})
	cases := []struct {
		name, method, path string
		body               []byte
	}{
		{"ticket", "GET", "/v1/tickets/" + tb.ID, nil},
		{"timeline page", "GET", "/v1/tickets/" + tb.ID + "?after=" + tb.LastEventID + "&limit=1", nil},
		{"customer timeline", "GET", "/v1/customers/bob/timeline", nil},
		{"post", "POST", "/v1/tickets/" + tb.ID + "/events", msg},
		{"patch", "PATCH", "/v1/tickets/" + tb.ID, []byte(`{"status":"closed"}`)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := readProblem(t, e.do(t, tc.method, tc.path, alice, tc.body), 404, api.CodeNotFound)
			// A probe for a ticket that does not exist gets the same answer.
			ghost := strings.ReplaceAll(tc.path, tb.ID, "tk_doesnotexist")
			ghost = strings.ReplaceAll(ghost, "/customers/bob/", "/customers/nobody/")
			q := readProblem(t, e.do(t, tc.method, ghost, alice, tc.body), 404, api.CodeNotFound)
			if p.Detail != q.Detail || p.Title != q.Title {
				t.Fatalf("existing ticket answers %+v, missing one %+v: a probe can tell them apart", p, q)
			}
		})
	}
	check()
	if got, _ := e.view(t, bob, tb.ID); got.Status != api.StatusOpen {
		t.Fatalf("bob's ticket changed: %+v", got)
	}
	// Alice's list does not show it either.
	var list api.TicketList
	decodeJSON(t, e.do(t, "GET", "/v1/tickets", alice, nil), 200, &list)
	for _, tk := range list.Tickets {
		if tk.CustomerID != "alice" {
			t.Fatalf("alice lists %+v", tk)
		}
	}
}

// TestPostEventRefusals: a malformed or forbidden event is refused with
// problem JSON and leaves the ticket as it was.
func TestPostEventRefusals(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	alice := e.token(t, "alice", auth.RoleCustomer)
	agent := e.token(t, "ann", auth.RoleAgent)
	tk := e.open(t, alice, api.OpenTicketRequest{Subject: "dishwasher"})
	check := e.unchanged(t, tk.ID)

	long := strings.Repeat("x", ticket.MaxText+1)
	cases := []struct {
		name    string
		tok     string
		typ     api.EventType
		payload string
		status  int
		code    string
	}{
		{"unknown type", alice, "teleport", `{"text":"hi"}`, 422, api.CodeValidation},
		{"unknown type as agent", agent, "ticket_deleted", `{}`, 422, api.CodeValidation},
		{"unknown field", alice, api.EventMessage, `{"text":"hi","colour":"red"}`, 422, api.CodeValidation},
		{"wrong type", alice, api.EventMessage, `{"text":42}`, 422, api.CodeValidation},
		{"missing text", alice, api.EventMessage, `{}`, 422, api.CodeValidation},
		{"null payload", alice, api.EventMessage, `null`, 422, api.CodeValidation},
		{"payload not an object", alice, api.EventMessage, `"hi"`, 422, api.CodeValidation},
		{"text over MaxText", alice, api.EventMessage, `{"text":"` + long + `"}`, 422, api.CodeValidation},
		{"note over MaxText", agent, api.EventNote, `{"text":"` + long + `"}`, 422, api.CodeValidation},
		{"customer posts a note", alice, api.EventNote, `{"text":"psst"}`, 403, api.CodeForbidden},
		{"customer posts an offer", alice, api.EventOfferMade, `{"text":"100% off"}`, 403, api.CodeForbidden},
		{"customer posts a system event", alice, api.EventFollowUpDue, `{"follow_up_id":"fu_x","at":"2030-01-01T00:00:00Z","action":"reminder"}`, 403, api.CodeForbidden},
		{"agent posts a system event", agent, api.EventTicketOpened, `{"subject":"x","priority":"low"}`, 403, api.CodeForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(fmt.Sprintf(`{"type":%q,"payload":%s}`, tc.typ, tc.payload))
			p := readProblem(t, e.do(t, "POST", "/v1/tickets/"+tk.ID+"/events", tc.tok, body), tc.status, tc.code)
			if strings.Contains(p.Detail, long[:100]) {
				t.Fatal("the detail echoes the input back")
			}
		})
	}
	t.Run("customer patches their ticket", func(t *testing.T) {
		for _, body := range []string{`{"status":"closed"}`, `{"queue":"vip"}`, `{"priority":"urgent"}`} {
			readProblem(t, e.do(t, "PATCH", "/v1/tickets/"+tk.ID, alice, []byte(body)), 403, api.CodeForbidden)
		}
	})
	check()

	// The bounds are inclusive: exactly MaxText bytes is a valid message.
	ev := e.post(t, alice, tk.ID, api.EventMessage, api.MessagePayload{Text: long[:ticket.MaxText]})
	if ev.Type != api.EventMessage || ev.Actor.ID != "alice" || ev.TicketID != tk.ID {
		t.Fatalf("posted %+v", ev)
	}
}

// TestPageLimitsAreClamped: no query string makes one page larger than
// MaxPage, and cursors visit every ticket exactly once.
func TestPageLimitsAreClamped(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	alice := e.token(t, "alice", auth.RoleCustomer)
	root := e.token(t, "root", auth.RoleAdmin)
	n := ticket.MaxPage + 7
	want := map[string]bool{}
	for i := range n {
		want[e.open(t, alice, api.OpenTicketRequest{Subject: "ticket " + strconv.Itoa(i)}).ID] = true
	}

	for _, tok := range []string{alice, root} {
		var list api.TicketList
		decodeJSON(t, e.do(t, "GET", "/v1/tickets?limit=1000000", tok, nil), 200, &list)
		if len(list.Tickets) != ticket.MaxPage || list.Next == "" {
			t.Fatalf("limit=1000000 gave %d tickets (next %q), want MaxPage=%d and a cursor", len(list.Tickets), list.Next, ticket.MaxPage)
		}
	}

	for _, limit := range []string{"1000000", "7", ""} {
		seen := map[string]int{}
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > n+2 {
				t.Fatal("paging does not end")
			}
			var list api.TicketList
			decodeJSON(t, e.do(t, "GET", "/v1/tickets?limit="+limit+"&cursor="+url.QueryEscape(cursor), alice, nil), 200, &list)
			for i, tk := range list.Tickets {
				seen[tk.ID]++
				if i > 0 && list.Tickets[i-1].UpdatedAt.Before(tk.UpdatedAt) {
					t.Fatalf("page not most-recent first: %v before %v", list.Tickets[i-1].UpdatedAt, tk.UpdatedAt)
				}
			}
			if list.Next == "" {
				break
			}
			cursor = list.Next
		}
		for id, c := range seen {
			if c != 1 || !want[id] {
				t.Fatalf("limit %q: ticket %s listed %d times", limit, id, c)
			}
		}
		if len(seen) != n {
			t.Fatalf("limit %q: paged %d of %d tickets", limit, len(seen), n)
		}
	}

	// A timeline longer than MaxPage: one page is MaxPage events.
	tk := e.open(t, alice, api.OpenTicketRequest{Subject: "chatty"})
	for i := range ticket.MaxPage + 3 {
		if _, err := e.tickets.Post(context.Background(), ticket.Viewer{ID: "alice", Role: auth.RoleCustomer}, tk.ID,
			api.EventMessage, mustJSON(t, api.MessagePayload{Text: "m" + strconv.Itoa(i)})); err != nil {
			t.Fatal(err)
		}
	}
	var v api.TicketView
	decodeJSON(t, e.do(t, "GET", "/v1/tickets/"+tk.ID+"?limit=1000000", alice, nil), 200, &v)
	if len(v.Events) != ticket.MaxPage || v.Next == "" {
		t.Fatalf("timeline limit=1000000 gave %d events (next %q)", len(v.Events), v.Next)
	}
	var tl api.Timeline
	decodeJSON(t, e.do(t, "GET", "/v1/customers/alice/timeline?limit=1000000", alice, nil), 200, &tl)
	if len(tl.Events) != ticket.MaxPage || tl.Next == "" {
		t.Fatalf("customer timeline limit=1000000 gave %d events (next %q)", len(tl.Events), tl.Next)
	}
	// Malformed paging input is a 422, not a 500.
	readProblem(t, e.do(t, "GET", "/v1/tickets/"+tk.ID+"?after=garbage", alice, nil), 422, api.CodeValidation)
	readProblem(t, e.do(t, "GET", "/v1/tickets?cursor=garbage", alice, nil), 422, api.CodeValidation)
}

// TestNotesAreStaffOnly: an internal note shows on the agent's view and
// never on the customer's, on the ticket or the customer timeline, and
// hiding it leaves no gap in the customer's paging.
func TestNotesAreStaffOnly(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	alice := e.token(t, "alice", auth.RoleCustomer)
	agent := e.token(t, "ann", auth.RoleAgent)
	tk := e.open(t, alice, api.OpenTicketRequest{Subject: "fridge"})
	e.post(t, agent, tk.ID, api.EventNote, api.NotePayload{Text: "customer is on the VIP list"})
	e.post(t, agent, tk.ID, api.EventNote, api.NotePayload{Text: "compressor, probably"})
	e.post(t, agent, tk.ID, api.EventMessage, api.MessagePayload{Text: "we'll send someone"})
	e.post(t, alice, tk.ID, api.EventMessage, api.MessagePayload{Text: "thanks"})

	_, staff := e.view(t, agent, tk.ID)
	if countType(staff, api.EventNote) != 2 || len(staff) != 5 {
		t.Fatalf("agent sees %d events, %d notes; want 5 and 2", len(staff), countType(staff, api.EventNote))
	}
	if got := e.customerTL(t, agent, "alice"); countType(got, api.EventNote) != 2 {
		t.Fatalf("agent's customer timeline has %d notes", countType(got, api.EventNote))
	}
	var visible []string
	for _, ev := range staff {
		if ev.Type != api.EventNote {
			visible = append(visible, ev.ID)
		}
	}
	_, own := e.view(t, alice, tk.ID)
	if got := ids(own); fmt.Sprint(got) != fmt.Sprint(visible) {
		t.Fatalf("customer sees %v, want %v", got, visible)
	}
	if got := ids(e.customerTL(t, alice, "alice")); fmt.Sprint(got) != fmt.Sprint(visible) {
		t.Fatalf("customer timeline shows %v, want %v", got, visible)
	}
	// Paged in small steps, the hidden notes open no gap.
	for _, limit := range []int{1, 2, 3} {
		var got []string
		after := ""
		for range 20 {
			var v api.TicketView
			decodeJSON(t, e.do(t, "GET", fmt.Sprintf("/v1/tickets/%s?limit=%d&after=%s", tk.ID, limit, after), alice, nil), 200, &v)
			if len(v.Events) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(v.Events))
			}
			got = append(got, ids(v.Events)...)
			if v.Next == "" {
				break
			}
			after = v.Next
		}
		if fmt.Sprint(got) != fmt.Sprint(visible) {
			t.Fatalf("limit %d: customer paged %v, want %v", limit, got, visible)
		}
	}
}

// TestQueueAndTechnicianScopes: an agent scoped to a queue sees only its
// tickets; a technician sees a ticket only once dispatched to it.
func TestQueueAndTechnicianScopes(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	alice := e.token(t, "alice", auth.RoleCustomer)
	billing := e.scopedToken(t, "bill", auth.RoleAgent, "queue:billing")
	lead := e.token(t, "lead", auth.RoleAgent)
	tech := e.token(t, "tom", auth.RoleTechnician)
	bt := e.open(t, alice, api.OpenTicketRequest{Subject: "double charge", Queue: "billing"})
	rt := e.open(t, alice, api.OpenTicketRequest{Subject: "broken hinge", Queue: "repairs"})

	var list api.TicketList
	decodeJSON(t, e.do(t, "GET", "/v1/tickets", billing, nil), 200, &list)
	if len(list.Tickets) != 1 || list.Tickets[0].ID != bt.ID {
		t.Fatalf("billing agent lists %+v", list.Tickets)
	}
	decodeJSON(t, e.do(t, "GET", "/v1/tickets?queue=repairs", billing, nil), 200, &list)
	if len(list.Tickets) != 0 {
		t.Fatalf("billing agent lists the repairs queue: %+v", list.Tickets)
	}
	decodeJSON(t, e.do(t, "GET", "/v1/tickets/"+bt.ID, billing, nil), 200, nil)
	check := e.unchanged(t, rt.ID)
	readProblem(t, e.do(t, "GET", "/v1/tickets/"+rt.ID, billing, nil), 404, api.CodeNotFound)
	readProblem(t, e.do(t, "PATCH", "/v1/tickets/"+rt.ID, billing, []byte(`{"queue":"billing"}`)), 404, api.CodeNotFound)
	readProblem(t, e.do(t, "POST", "/v1/tickets/"+rt.ID+"/events", billing,
		[]byte(`{"type":"note","payload":{"text":"x"}}`)), 404, api.CodeNotFound)

	// The technician: nothing until dispatched.
	decodeJSON(t, e.do(t, "GET", "/v1/tickets", tech, nil), 200, &list)
	if len(list.Tickets) != 0 {
		t.Fatalf("undispatched technician lists %+v", list.Tickets)
	}
	readProblem(t, e.do(t, "GET", "/v1/tickets/"+rt.ID, tech, nil), 404, api.CodeNotFound)
	readProblem(t, e.do(t, "PATCH", "/v1/tickets/"+rt.ID, tech, []byte(`{"status":"resolved"}`)), 404, api.CodeNotFound)
	check()

	var up api.Ticket
	decodeJSON(t, e.do(t, "PATCH", "/v1/tickets/"+rt.ID, lead, []byte(`{"technician":"tom"}`)), 200, &up)
	if up.Technician != "tom" {
		t.Fatalf("patched %+v", up)
	}
	decodeJSON(t, e.do(t, "GET", "/v1/tickets/"+rt.ID, tech, nil), 200, nil)
	decodeJSON(t, e.do(t, "GET", "/v1/tickets", tech, nil), 200, &list)
	if len(list.Tickets) != 1 || list.Tickets[0].ID != rt.ID {
		t.Fatalf("dispatched technician lists %+v", list.Tickets)
	}
	readProblem(t, e.do(t, "GET", "/v1/tickets/"+bt.ID, tech, nil), 404, api.CodeNotFound)
	// The technician may move the status, nothing else.
	readProblem(t, e.do(t, "PATCH", "/v1/tickets/"+rt.ID, tech, []byte(`{"queue":"billing"}`)), 403, api.CodeForbidden)
	decodeJSON(t, e.do(t, "PATCH", "/v1/tickets/"+rt.ID, tech, []byte(`{"status":"resolved"}`)), 200, &up)
	// Reassigned away, the ticket disappears for them again.
	decodeJSON(t, e.do(t, "PATCH", "/v1/tickets/"+rt.ID, lead, []byte(`{"technician":"tina"}`)), 200, nil)
	readProblem(t, e.do(t, "GET", "/v1/tickets/"+rt.ID, tech, nil), 404, api.CodeNotFound)
	decodeJSON(t, e.do(t, "GET", "/v1/tickets", tech, nil), 200, &list)
	if len(list.Tickets) != 0 {
		t.Fatalf("reassigned technician still lists %+v", list.Tickets)
	}
}

// TestOpenTicketIdempotent: a mobile retry with the same Idempotency-Key
// answers the first ticket and opens no second one.
func TestOpenTicketIdempotent(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	alice := e.token(t, "alice", auth.RoleCustomer)
	body := mustJSON(t, api.OpenTicketRequest{Subject: "no picture", Message: "the TV shows nothing"})
	var first, again api.Ticket
	decodeJSON(t, e.do(t, "POST", "/v1/tickets", alice, body, "Idempotency-Key", "k-1"), 201, &first)
	n := e.logLen(t)
	res := e.do(t, "POST", "/v1/tickets", alice, body, "Idempotency-Key", "k-1")
	if res.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatal("retry not marked as replayed")
	}
	decodeJSON(t, res, 201, &again)
	if again.ID != first.ID {
		t.Fatalf("retry opened %s, first %s", again.ID, first.ID)
	}
	if got := e.logLen(t); got != n {
		t.Fatalf("retry wrote %d events", got-n)
	}
	var list api.TicketList
	decodeJSON(t, e.do(t, "GET", "/v1/tickets", alice, nil), 200, &list)
	if len(list.Tickets) != 1 {
		t.Fatalf("%d tickets after a retry", len(list.Tickets))
	}
	// The same key with another body is refused, not a second ticket.
	other := mustJSON(t, api.OpenTicketRequest{Subject: "something else"})
	readProblem(t, e.do(t, "POST", "/v1/tickets", alice, other, "Idempotency-Key", "k-1"), 422, api.CodeIdempotencyMismatch)
	if got := e.logLen(t); got != n {
		t.Fatal("a mismatched key wrote events")
	}
}

// ingest sends a signed POST /v1/ingest/{channel}.
func (e *env) ingest(t testing.TB, channel, secret string, at time.Time, body []byte) (*http.Response, string, string) {
	t.Helper()
	ts := strconv.FormatInt(at.Unix(), 10)
	sig := ticket.IngestSignature(secret, ts, body)
	return e.do(t, "POST", "/v1/ingest/"+channel, "", body,
		"X-Switchboard-Timestamp", ts, "X-Switchboard-Signature", sig), ts, sig
}

// TestIngest: a signed message from an outside channel opens a ticket
// for a provisional customer; retries, forgeries and replays write
// nothing.
func TestIngest(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	root := e.token(t, "root", auth.RoleAdmin)
	secret := testIngestSecrets["webchat"]
	body := mustJSON(t, api.IngestRequest{Handle: "Joe@Example.com", ExternalID: "chat-1", Text: "my projector broke", Subject: "projector"})

	var res api.IngestResult
	r, _, _ := e.ingest(t, "webchat", secret, time.Now(), body)
	decodeJSON(t, r, 201, &res)
	if !res.Provisional || !ticket.IsProvisional(res.CustomerID) || res.TicketID == "" || res.EventID == "" || res.Duplicate {
		t.Fatalf("ingest = %+v", res)
	}
	tk, evs := e.view(t, root, res.TicketID)
	if tk.CustomerID != res.CustomerID || tk.Channel != "webchat" || countType(evs, api.EventMessage) != 1 {
		t.Fatalf("ticket %+v with %d events", tk, len(evs))
	}
	var p api.MessagePayload
	if err := json.Unmarshal(evs[len(evs)-1].Payload, &p); err != nil || p.Text != "my projector broke" || p.Handle != "joe@example.com" || p.ExternalID != "chat-1" {
		t.Fatalf("message payload %s", evs[len(evs)-1].Payload)
	}
	check := e.unchanged(t, res.TicketID)

	// The channel retries the same message, newly signed (a later
	// timestamp: the same signature again would be a replay): 200, the
	// first result, nothing written.
	var dup api.IngestResult
	r, _, _ = e.ingest(t, "webchat", secret, time.Now().Add(time.Second), body)
	decodeJSON(t, r, 200, &dup)
	if !dup.Duplicate || dup.EventID != res.EventID || dup.TicketID != res.TicketID {
		t.Fatalf("retry = %+v, first %+v", dup, res)
	}
	check()

	other := mustJSON(t, api.IngestRequest{Handle: "joe@example.com", ExternalID: "chat-2", Text: "hello?"})
	t.Run("bad signature", func(t *testing.T) {
		r, _, _ := e.ingest(t, "webchat", "not-the-secret", time.Now(), other)
		readProblem(t, r, 401, api.CodeUnauthorized)
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		for _, sig := range []string{"", "sha256=", "garbage", ticket.IngestSignature(secret, ts, body)} {
			r := e.do(t, "POST", "/v1/ingest/webchat", "", other, "X-Switchboard-Timestamp", ts, "X-Switchboard-Signature", sig)
			readProblem(t, r, 401, api.CodeUnauthorized)
		}
	})
	t.Run("stale timestamp", func(t *testing.T) {
		r, _, _ := e.ingest(t, "webchat", secret, time.Now().Add(-6*time.Minute), other)
		readProblem(t, r, 401, api.CodeUnauthorized)
		r, _, _ = e.ingest(t, "webchat", secret, time.Now().Add(6*time.Minute), other)
		readProblem(t, r, 401, api.CodeUnauthorized)
		r = e.do(t, "POST", "/v1/ingest/webchat", "", other, "X-Switchboard-Signature", ticket.IngestSignature(secret, "", other))
		readProblem(t, r, 401, api.CodeUnauthorized)
	})
	t.Run("unknown channel", func(t *testing.T) {
		r, _, _ := e.ingest(t, "fax", secret, time.Now(), other)
		readProblem(t, r, 404, api.CodeNotFound)
	})
	check()
	t.Run("replayed signature", func(t *testing.T) {
		r, ts, sig := e.ingest(t, "webchat", secret, time.Now(), other)
		var second api.IngestResult
		decodeJSON(t, r, 201, &second)
		if second.TicketID != res.TicketID || second.CustomerID != res.CustomerID {
			t.Fatalf("the handle's next message went to %+v, want ticket %s", second, res.TicketID)
		}
		n := e.logLen(t)
		r = e.do(t, "POST", "/v1/ingest/webchat", "", other, "X-Switchboard-Timestamp", ts, "X-Switchboard-Signature", sig)
		readProblem(t, r, 409, api.CodeConflict)
		if got := e.logLen(t); got != n {
			t.Fatal("a replay wrote an event")
		}
	})
}

// TestLinkIdentity: an agent links an ingested handle to a real customer,
// whose own timeline then shows what came in through it.
func TestLinkIdentity(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	agent := e.token(t, "ann", auth.RoleAgent)
	joe := e.token(t, "joe", auth.RoleCustomer)
	e.open(t, joe, api.OpenTicketRequest{Subject: "joe's own ticket"})
	body := mustJSON(t, api.IngestRequest{Handle: "+1 (555) 010-9999", ExternalID: "sms-1", Text: "projector dead again"})
	var res api.IngestResult
	r, _, _ := e.ingest(t, "webchat", testIngestSecrets["webchat"], time.Now(), body)
	decodeJSON(t, r, 201, &res)
	for _, ev := range e.customerTL(t, joe, "joe") {
		if ev.TicketID == res.TicketID {
			t.Fatal("joe sees the stranger's message before the link")
		}
	}

	// A customer may not link handles to anyone.
	n := e.logLen(t)
	link := mustJSON(t, api.LinkIdentityRequest{CustomerID: "joe", Channel: "webchat", Handle: "+15550109999"})
	readProblem(t, e.do(t, "POST", "/v1/identities", joe, link), 403, api.CodeForbidden)
	if e.logLen(t) != n {
		t.Fatal("a refused link wrote events")
	}

	var id api.Identity
	decodeJSON(t, e.do(t, "POST", "/v1/identities", agent, link), 201, &id)
	if id.CustomerID != "joe" || id.MergedFrom != res.CustomerID || id.Handle != "+15550109999" {
		t.Fatalf("linked %+v", id)
	}
	found := false
	for _, ev := range e.customerTL(t, joe, "joe") {
		var p api.MessagePayload
		if ev.Type == api.EventMessage && json.Unmarshal(ev.Payload, &p) == nil && p.ExternalID == "sms-1" {
			found = true
		}
	}
	if !found {
		t.Fatal("joe's timeline does not show the message that came in through his handle")
	}
	// The ticket moved to joe.
	if tk, _ := e.view(t, joe, res.TicketID); tk.CustomerID != "joe" {
		t.Fatalf("ticket after merge %+v", tk)
	}
	// The handle's next message lands on joe directly.
	var next api.IngestResult
	r, _, _ = e.ingest(t, "webchat", testIngestSecrets["webchat"], time.Now(),
		mustJSON(t, api.IngestRequest{Handle: "+1 555 010 9999", ExternalID: "sms-2", Text: "hello?"}))
	decodeJSON(t, r, 201, &next)
	if next.CustomerID != "joe" || next.Provisional {
		t.Fatalf("after the link, ingest went to %+v", next)
	}

	// Linking it again to joe is a no-op; to another real customer, 409.
	n = e.logLen(t)
	decodeJSON(t, e.do(t, "POST", "/v1/identities", agent, link), 201, nil)
	steal := mustJSON(t, api.LinkIdentityRequest{CustomerID: "jim", Channel: "webchat", Handle: "+15550109999"})
	readProblem(t, e.do(t, "POST", "/v1/identities", agent, steal), 409, api.CodeConflict)
	if e.logLen(t) != n {
		t.Fatal("a refused or repeated link wrote events")
	}
	if tl := e.customerTL(t, agent, "jim"); len(tl) != 0 {
		t.Fatalf("jim gained %d events", len(tl))
	}
}

// TestFollowUpFiresOnce: a follow-up scheduled by an agent fires exactly
// once even when two nodes find it due at the same moment.
func TestFollowUpFiresOnce(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	alice := e.token(t, "alice", auth.RoleCustomer)
	agent := e.token(t, "ann", auth.RoleAgent)
	tk := e.open(t, alice, api.OpenTicketRequest{Subject: "oven"})

	at := time.Now().Add(time.Second)
	req := mustJSON(t, api.FollowUpRequest{At: at, Action: api.FollowUpOffer, Offer: "10% off a new door seal"})
	check := e.unchanged(t, tk.ID)
	readProblem(t, e.do(t, "POST", "/v1/tickets/"+tk.ID+"/follow-ups", alice, req), 403, api.CodeForbidden)
	readProblem(t, e.do(t, "POST", "/v1/tickets/"+tk.ID+"/follow-ups", agent,
		mustJSON(t, api.FollowUpRequest{At: at, Action: "teleport"})), 422, api.CodeValidation)
	check()
	var fu api.FollowUp
	decodeJSON(t, e.do(t, "POST", "/v1/tickets/"+tk.ID+"/follow-ups", agent, req), 201, &fu)
	if fu.ID == "" || fu.By != "ann" || fu.At.Sub(at).Abs() > time.Millisecond {
		t.Fatalf("scheduled %+v", fu)
	}

	// Not due yet: nothing fires.
	if err := e.tickets.FireDue(context.Background(), "early"); err != nil {
		t.Fatal(err)
	}
	if _, evs := e.view(t, agent, tk.ID); countType(evs, api.EventFollowUpDue) != 0 {
		t.Fatal("fired before it was due")
	}
	// Wait for the due time itself (a deadline, not a guess at a race).
	time.Sleep(time.Until(at) + 20*time.Millisecond)

	nodes := []*ticket.Service{e.tickets, ticket.New(e.store)}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- nodes[i%2].FireDue(context.Background(), "node-"+strconv.Itoa(i))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	_ = e.tickets.FireDue(context.Background(), "late")
	_, evs := e.view(t, agent, tk.ID)
	if n := countType(evs, api.EventFollowUpDue); n != 1 {
		t.Fatalf("%d follow_up_due events, want exactly 1", n)
	}
	var p api.FollowUpPayload
	for _, ev := range evs {
		if ev.Type == api.EventFollowUpDue {
			_ = json.Unmarshal(ev.Payload, &p)
		}
	}
	if p.FollowUpID != fu.ID || p.Offer != "10% off a new door seal" {
		t.Fatalf("fired payload %+v", p)
	}
}

// TestMergeKeepsListOrder: tickets a link moves to the real customer keep
// their place by last activity in every list, so lists stay most recently
// updated first.
func TestMergeKeepsListOrder(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	agent := e.token(t, "ann", auth.RoleAgent)
	joe := e.token(t, "joe", auth.RoleCustomer)
	secret := testIngestSecrets["webchat"]
	var in api.IngestResult
	r, _, _ := e.ingest(t, "webchat", secret, time.Now(), mustJSON(t, api.IngestRequest{Handle: "joe@example.com", ExternalID: "m-1", Text: "first"}))
	decodeJSON(t, r, 201, &in)
	e.open(t, joe, api.OpenTicketRequest{Subject: "joe's own"})
	time.Sleep(2 * time.Millisecond) // distinct milliseconds: the order under test is by time
	r, _, _ = e.ingest(t, "webchat", secret, time.Now(), mustJSON(t, api.IngestRequest{Handle: "joe@example.com", ExternalID: "m-2", Text: "second"}))
	decodeJSON(t, r, 201, nil)
	decodeJSON(t, e.do(t, "POST", "/v1/identities", agent,
		mustJSON(t, api.LinkIdentityRequest{CustomerID: "joe", Channel: "webchat", Handle: "joe@example.com"})), 201, nil)

	for _, tok := range []string{joe, agent} {
		var list api.TicketList
		decodeJSON(t, e.do(t, "GET", "/v1/tickets", tok, nil), 200, &list)
		if len(list.Tickets) != 2 {
			t.Fatalf("%d tickets", len(list.Tickets))
		}
		if list.Tickets[0].ID != in.TicketID || list.Tickets[0].UpdatedAt.Before(list.Tickets[1].UpdatedAt) {
			t.Fatalf("list not most recently updated first: %s at %v, then %s at %v",
				list.Tickets[0].ID, list.Tickets[0].UpdatedAt, list.Tickets[1].ID, list.Tickets[1].UpdatedAt)
		}
	}
}

// TestIngestRefusedMessageOpensNoTicket: a message whose text is within
// ticket.MaxText but whose event is over ticket.MaxPayload once
// JSON-encoded (an HTML mail: '<', '>' and '&' take six bytes there) is
// refused before anything is written: no ticket is opened for it, and
// the handle's next message opens the one ticket.
func TestIngestRefusedMessageOpensNoTicket(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	root := e.token(t, "root", auth.RoleAdmin)
	secret := testIngestSecrets["webchat"]
	html := strings.Repeat("<p>&nbsp;</p>", ticket.MaxText/len("<p>&nbsp;</p>"))
	n := e.logLen(t)
	r, _, _ := e.ingest(t, "webchat", secret, time.Now(),
		mustJSON(t, api.IngestRequest{Handle: "mail@example.com", ExternalID: "mail-1", Text: html, Subject: "broken"}))
	readProblem(t, r, 422, api.CodeValidation)
	if got := e.logLen(t); got != n {
		t.Fatalf("the refused message wrote %d events", got-n)
	}
	var res api.IngestResult
	r, _, _ = e.ingest(t, "webchat", secret, time.Now(),
		mustJSON(t, api.IngestRequest{Handle: "mail@example.com", ExternalID: "mail-2", Text: "my projector broke", Subject: "broken"}))
	decodeJSON(t, r, 201, &res)
	var list api.TicketList
	decodeJSON(t, e.do(t, "GET", "/v1/tickets?limit=100", root, nil), 200, &list)
	mine := 0
	for _, tk := range list.Tickets {
		if tk.CustomerID == res.CustomerID {
			mine++
		}
	}
	if mine != 1 {
		t.Fatalf("the handle has %d tickets, want the one its accepted message opened", mine)
	}
}
