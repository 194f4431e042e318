package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/internal/poll"
	sdk "github.com/switchboard/switchboard/mobile-sdk"
	"github.com/switchboard/switchboard/mobile-sdk/mobile"
	"github.com/switchboard/switchboard/ticket"
)

// client signs sub in with role on a new SDK client; hc may be nil.
func (s *server) client(t *testing.T, sub string, role auth.Role, hc *http.Client) *sdk.Client {
	t.Helper()
	return signIn(t, s.issuer, s.url, sub, role, hc)
}

// signIn signs sub in with role, with tokens from iss, on a new SDK
// client of the gateway at url; hc may be nil.
func signIn(t *testing.T, iss *auth.Issuer, url, sub string, role auth.Role, hc *http.Client) *sdk.Client {
	t.Helper()
	p, err := iss.Pair(context.Background(), sub, role, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sdk.New(sdk.Config{BaseURL: url, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SignIn(api.TokenPair{AccessToken: p.AccessToken, RefreshToken: p.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTicketsEndToEnd: a customer opens a ticket, writes, reads the
// timeline and lists their tickets through the SDK.
func TestTicketsEndToEnd(t *testing.T) {
	s := startGateway(t, auth.Config{})
	c := s.client(t, "joe", auth.RoleCustomer, nil)
	ctx := t.Context()

	tk, err := c.OpenTicket(ctx, api.OpenTicketRequest{Subject: "projector", Message: "no picture"}, "")
	if err != nil || tk.ID == "" || tk.CustomerID != "joe" || tk.Status != api.StatusOpen {
		t.Fatalf("open = %+v, %v", tk, err)
	}
	ev, err := c.PostMessage(ctx, tk.ID, "the lamp blinks red", "")
	if err != nil || ev.Type != api.EventMessage || ev.TicketID != tk.ID || ev.Actor.ID != "joe" {
		t.Fatalf("post = %+v, %v", ev, err)
	}
	v, err := c.Ticket(ctx, tk.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	var types []api.EventType
	for _, e := range v.Events {
		types = append(types, e.Type)
	}
	if fmt.Sprint(types) != "[ticket_opened message message]" || v.Events[2].ID != ev.ID || v.Ticket.LastEventID != ev.ID {
		t.Fatalf("timeline %v, ticket %+v", types, v.Ticket)
	}
	// Paging on from an event gives what follows it.
	rest, err := c.Ticket(ctx, tk.ID, v.Events[0].ID)
	if err != nil || len(rest.Events) != 2 || rest.Events[0].ID != v.Events[1].ID {
		t.Fatalf("after %s: %+v, %v", v.Events[0].ID, rest, err)
	}

	// The same key twice is one ticket.
	a, err := c.OpenTicket(ctx, api.OpenTicketRequest{Subject: "fridge"}, "fridge-1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.OpenTicket(ctx, api.OpenTicketRequest{Subject: "fridge"}, "fridge-1")
	if err != nil || b.ID != a.ID {
		t.Fatalf("retry with the same key: %+v, %v; first %s", b, err, a.ID)
	}
	list, err := c.Tickets(ctx, "", "")
	if err != nil || len(list.Tickets) != 2 || list.Tickets[0].ID != a.ID {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if l, err := c.Tickets(ctx, api.StatusClosed, ""); err != nil || len(l.Tickets) != 0 {
		t.Fatalf("closed list = %+v, %v", l, err)
	}

	// Refusals are typed.
	other := s.client(t, "mallory", auth.RoleCustomer, nil)
	if _, err := other.Ticket(ctx, tk.ID, ""); sdk.StatusCode(err) != 404 || sdk.Code(err) != api.CodeNotFound {
		t.Fatalf("someone else's ticket: %v", err)
	}
	if _, err := other.PostMessage(ctx, tk.ID, "hi", ""); sdk.StatusCode(err) != 404 {
		t.Fatalf("post to someone else's ticket: %v", err)
	}
	if _, err := c.PostMessage(ctx, tk.ID, "", ""); sdk.StatusCode(err) != 422 || sdk.Code(err) != api.CodeValidation {
		t.Fatalf("empty message: %v", err)
	}
	if _, err := c.Tickets(ctx, "bogus", ""); sdk.StatusCode(err) != 422 {
		t.Fatalf("bad status filter: %v", err)
	}
	for _, id := range []string{"", "..", "a/b", "x?y"} {
		if _, err := c.Ticket(ctx, id, ""); err == nil || sdk.StatusCode(err) != 0 {
			t.Fatalf("ID %q reached the gateway: %v", id, err)
		}
	}
}

// flaky wraps a transport and spoils the first n POSTs to a path, in the
// ways a mobile network does.
type flaky struct {
	next http.RoundTripper
	mode string // "lost": sent, answer lost; "503": a proxy's 503
	path string

	mu   sync.Mutex
	left int
	keys []string
}

func (f *flaky) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPost || r.URL.Path != f.path {
		return f.next.RoundTrip(r)
	}
	f.mu.Lock()
	f.keys = append(f.keys, r.Header.Get("Idempotency-Key"))
	spoil := f.left > 0
	f.left--
	f.mu.Unlock()
	if !spoil {
		return f.next.RoundTrip(r)
	}
	switch f.mode {
	case "lost":
		res, err := f.next.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return nil, errors.New("connection reset by peer")
	default:
		return &http.Response{StatusCode: 503, Header: http.Header{"Content-Type": {"text/html"}},
			Body: io.NopCloser(strings.NewReader("<h1>bad gateway</h1>")), Request: r}, nil
	}
}

// TestOpenTicketRetriesSafely: answers lost on the way back and 503s from
// a proxy are retried with the same Idempotency-Key: one ticket, not two.
func TestOpenTicketRetriesSafely(t *testing.T) {
	for _, mode := range []string{"lost", "503"} {
		t.Run(mode, func(t *testing.T) {
			s := startGateway(t, auth.Config{})
			f := &flaky{next: http.DefaultTransport, mode: mode, path: "/v1/tickets", left: 2}
			c := s.client(t, "joe", auth.RoleCustomer, &http.Client{Transport: f, Timeout: 10 * time.Second})
			tk, err := c.OpenTicket(t.Context(), api.OpenTicketRequest{Subject: "washer"}, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(f.keys) != 3 || f.keys[0] == "" || f.keys[0] != f.keys[1] || f.keys[1] != f.keys[2] {
				t.Fatalf("attempts carried keys %q: want 3 attempts with one generated key", f.keys)
			}
			list, err := c.Tickets(t.Context(), "", "")
			if err != nil || len(list.Tickets) != 1 || list.Tickets[0].ID != tk.ID {
				t.Fatalf("after retries: %+v, %v (opened %s)", list, err, tk.ID)
			}
			// Retries are bounded: a gateway that never answers is an error.
			f.mu.Lock()
			f.left, f.keys = 100, nil
			f.mu.Unlock()
			if _, err := c.OpenTicket(t.Context(), api.OpenTicketRequest{Subject: "dryer"}, ""); err == nil {
				t.Fatal("no error from a gateway that never answers")
			}
			if len(f.keys) != 4 {
				t.Fatalf("%d attempts, want a bounded 4", len(f.keys))
			}
			// Refusals are not retried.
			f.mu.Lock()
			f.left, f.keys = 0, nil
			f.mu.Unlock()
			if _, err := c.OpenTicket(t.Context(), api.OpenTicketRequest{}, ""); sdk.StatusCode(err) != 422 || len(f.keys) != 1 {
				t.Fatalf("validation error: %v after %d attempts", err, len(f.keys))
			}
		})
	}
}

// dropper is a transport whose connections a test can cut, as a phone
// losing its network does.
type dropper struct {
	mu    sync.Mutex
	conns []net.Conn
	dials int
}

func (d *dropper) client() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			d.mu.Lock()
			d.conns = append(d.conns, c)
			d.dials++
			d.mu.Unlock()
		}
		return c, err
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func (d *dropper) drop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		c.Close()
	}
	d.conns = nil
}

func (d *dropper) dialed() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dials
}

// collector gathers what Follow delivers.
type collector struct {
	mu  sync.Mutex
	evs []api.Event
}

func (c *collector) add(ev api.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evs = append(c.evs, ev)
	return nil
}

func (c *collector) ids() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.evs))
	for i, ev := range c.evs {
		out[i] = ev.ID
	}
	return out
}

func (c *collector) waitFor(t *testing.T, n int) {
	t.Helper()
	poll.Until(t, 20*time.Second, 10*time.Millisecond, func() error {
		if got := len(c.ids()); got < n {
			return fmt.Errorf("got %d live events, want %d", got, n)
		}
		return nil
	})
}

// TestFollowResumesWithoutGapOrDuplicate: a customer follows their ticket
// live; the network drops, then the gateway restarts, while events keep
// coming. The SDK reconnects with Last-Event-ID each time and the app
// sees every event exactly once, in order.
func TestFollowResumesWithoutGapOrDuplicate(t *testing.T) {
	s := startGateway(t, auth.Config{})
	link := &dropper{}
	joe := s.client(t, "joe", auth.RoleCustomer, link.client())
	agent := s.client(t, "ann", auth.RoleAgent, nil)
	ctx := t.Context()
	tk, err := joe.OpenTicket(ctx, api.OpenTicketRequest{Subject: "projector"}, "")
	if err != nil {
		t.Fatal(err)
	}
	// Something happened before Follow: resuming after the ticket's
	// opening replays it.
	if _, err := agent.PostMessage(ctx, tk.ID, "hello Joe", ""); err != nil {
		t.Fatal(err)
	}

	got := &collector{}
	fctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- joe.Follow(fctx, sdk.FollowFilter{Ticket: tk.ID}, tk.LastEventID, got.add) }()
	defer func() {
		stop()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Follow returned %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Follow did not return after its context ended")
		}
	}()

	say := func(c *sdk.Client, from, to int) {
		for i := from; i < to; i++ {
			if _, err := c.PostMessage(ctx, tk.ID, fmt.Sprintf("m%d", i), ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	got.waitFor(t, 1)
	say(agent, 0, 5)
	got.waitFor(t, 6)

	// The network drops; messages arrive meanwhile.
	link.drop()
	say(agent, 5, 10)
	got.waitFor(t, 11)

	// The node restarts; an internal note (not for Joe) and more messages
	// are written while no gateway runs.
	s = s.restart(t) // same address: the client's base URL still holds
	staff := ticket.Viewer{ID: "ann", Role: auth.RoleAgent}
	for i, typ := range []api.EventType{api.EventMessage, api.EventNote, api.EventMessage} {
		payload := fmt.Sprintf(`{"text":"while down %d"}`, i)
		if _, err := s.tickets.Post(ctx, staff, tk.ID, typ, []byte(payload)); err != nil {
			t.Fatal(err)
		}
	}
	say(agent, 10, 12)
	got.waitFor(t, 15)
	if link.dialed() < 3 {
		t.Fatalf("%d connections: the test did not make the client reconnect", link.dialed())
	}

	// Exactly the customer-visible timeline after the opening, in order.
	var want []string
	after := tk.LastEventID
	for {
		v, err := joe.Ticket(ctx, tk.ID, after)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range v.Events {
			want = append(want, e.ID)
		}
		if v.Next == "" {
			break
		}
		after = v.Next
	}
	time.Sleep(100 * time.Millisecond) // a duplicate would arrive now
	if fmt.Sprint(got.ids()) != fmt.Sprint(want) {
		t.Fatalf("followed\n%v\nwant\n%v", got.ids(), want)
	}
	got.mu.Lock()
	defer got.mu.Unlock()
	for _, ev := range got.evs {
		if ev.Type == api.EventNote {
			t.Fatal("the customer's feed carried an internal note")
		}
	}
}

// TestFollowStopsOnCallbackError: fn's error ends Follow at once, and a
// feed the user may not have is refused without retrying.
func TestFollowStopsOnCallbackError(t *testing.T) {
	s := startGateway(t, auth.Config{})
	joe := s.client(t, "joe", auth.RoleCustomer, nil)
	tk, err := joe.OpenTicket(t.Context(), api.OpenTicketRequest{Subject: "oven", Message: "cold"}, "")
	if err != nil {
		t.Fatal(err)
	}
	enough := errors.New("enough")
	err = joe.Follow(t.Context(), sdk.FollowFilter{Ticket: tk.ID}, "0-0", func(api.Event) error { return enough })
	if !errors.Is(err, enough) {
		t.Fatalf("Follow = %v, want the callback's error", err)
	}
	err = joe.Follow(t.Context(), sdk.FollowFilter{Status: "bogus"}, "", func(api.Event) error { return nil })
	if sdk.StatusCode(err) != 422 {
		t.Fatalf("bad filter: %v", err)
	}
}

// tokens is a mobile.TokenStore for tests.
type tokens struct{ sdk.MemoryTokens }

func (m *tokens) AccessToken() string  { a, _ := m.Load(); return a }
func (m *tokens) RefreshToken() string { _, r := m.Load(); return r }
func (m *tokens) SaveTokens(a, r string) error {
	return m.Save(a, r)
}

// signInMobile is signIn for the bindable client, with its tokens in a
// tokens store as an app keeps them.
func signInMobile(t *testing.T, iss *auth.Issuer, url, sub string, role auth.Role) *mobile.Client {
	t.Helper()
	p, err := iss.Pair(context.Background(), sub, role, nil)
	if err != nil {
		t.Fatal(err)
	}
	store := &tokens{}
	store.SaveTokens(p.AccessToken, p.RefreshToken)
	c, err := mobile.NewClient(url, store)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// handler is a mobile.EventHandler for tests.
type handler struct {
	events  chan *mobile.Event
	stopped chan string
}

func (h *handler) OnEvent(e *mobile.Event) error { h.events <- e; return nil }
func (h *handler) OnStopped(reason string)       { h.stopped <- reason }

// TestMobileTickets: the bindable wrapper opens a ticket, posts and
// follows live, as a Kotlin or Swift app would call it.
func TestMobileTickets(t *testing.T) {
	s := startGateway(t, auth.Config{})
	c := signInMobile(t, s.issuer, s.url, "joe", auth.RoleCustomer)
	tk, err := c.OpenTicket("projector", "no picture")
	if err != nil || tk.ID == "" || tk.Status != "open" || tk.LastEventID == "" {
		t.Fatalf("open = %+v, %v", tk, err)
	}
	h := &handler{events: make(chan *mobile.Event, 16), stopped: make(chan string, 1)}
	feed, err := c.Follow(&mobile.FollowFilter{TicketID: tk.ID}, tk.LastEventID, h)
	if err != nil {
		t.Fatal(err)
	}
	posted, err := c.PostMessage(tk.ID, "lamp blinks")
	if err != nil || posted.Text != "lamp blinks" || posted.Type != "message" {
		t.Fatalf("post = %+v, %v", posted, err)
	}
	select {
	case e := <-h.events:
		if e.ID != posted.ID || e.Text != "lamp blinks" || e.ActorID != "joe" || e.TimeUnixMilli == 0 {
			t.Fatalf("live event %+v, posted %+v", e, posted)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no live event")
	}
	feed.Stop()
	if reason := <-h.stopped; reason != "" {
		t.Fatalf("stopped with %q after Stop", reason)
	}
	if _, err := c.PostMessage("tk_nope", "x"); err == nil || !strings.HasPrefix(err.Error(), api.CodeNotFound+" (404)") {
		t.Fatalf("error for a missing ticket: %v", err)
	}
}
