package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/gateway"
	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/embedded"
	"github.com/switchboard/switchboard/ticket"
)

// streamEnv is a gateway with a running live feed, on a loopback port.
type streamEnv struct {
	*env
	hub  *ticket.Hub
	addr string
}

// newStreamEnv serves a gateway with a hub; the goroutine check runs
// after every cleanup (server, hub, store).
func newStreamEnv(t testing.TB, cfg gateway.Config, hcfg ticket.HubConfig) *streamEnv {
	t.Helper()
	checkNoLeaks(t)
	store, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return streamEnvOn(t, store, cfg, hcfg)
}

// streamEnvOn serves a gateway with a hub on store.
func streamEnvOn(t testing.TB, store state.Store, cfg gateway.Config, hcfg ticket.HubConfig) *streamEnv {
	t.Helper()
	key, err := auth.LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ac := auth.Config{}
	e := &env{store: store, key: key, reg: prometheus.NewRegistry(), authc: ac, issuer: auth.NewIssuer(ac, key, store),
		tickets: ticket.New(store)}
	hub := ticket.NewHub(e.tickets, hcfg)
	e.srv = gateway.New(cfg, gateway.Deps{
		Store: store, Issuer: e.issuer, Verifier: auth.NewVerifier(ac, key),
		Tickets: e.tickets, Hub: hub, Registry: e.reg,
	})
	se := &streamEnv{env: e, hub: hub}
	se.addr = e.listen(t)
	// Registered after listen, so it runs first: the hub's stop ends every
	// stream, then the server shuts down without waiting on them.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hub.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return se
}

// checkNoLeaks fails the test if it leaves goroutines behind; register
// it first, so it runs after every other cleanup. Two fasthttp
// goroutines are not ours: the once-per-process date ticker, and the
// worker pool's cleaner, which sleeps 10s before it sees the stop.
func checkNoLeaks(t testing.TB) {
	before := liveGoroutines()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			now := liveGoroutines()
			if len(now) <= len(before) {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("goroutines leaked: %d > %d\n%s", len(now), len(before), strings.Join(now, "\n\n"))
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func liveGoroutines() []string {
	buf := make([]byte, 1<<20)
	var out []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if !strings.Contains(g, "fasthttp.updateServerDate") && !strings.Contains(g, "fasthttp.(*workerPool).Start.func2") {
			out = append(out, g)
		}
	}
	return out
}

func (e *streamEnv) open(t testing.TB, customer, queue string) api.Ticket {
	t.Helper()
	tk, err := e.tickets.Open(context.Background(), ticket.System, api.OpenTicketRequest{CustomerID: customer, Subject: "projector broken", Queue: queue})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func (e *streamEnv) post(t testing.TB, tk string, typ api.EventType, text string) api.Event {
	t.Helper()
	p, _ := json.Marshal(map[string]string{"text": text})
	ev, err := e.tickets.Append(context.Background(), api.Event{TicketID: tk, Type: typ, Actor: api.Actor{ID: "system", Role: "system"}, Payload: p})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// dial opens a WebSocket on /v1/stream with query (token in the query,
// as a browser would send it).
func (e *streamEnv) dial(t testing.TB, token, query string, hdr http.Header) *websocket.Conn {
	t.Helper()
	c, res, err := e.tryDial(token, query, hdr)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("dial: %v (status %d)", err, status)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (e *streamEnv) tryDial(token, query string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	u := "ws://" + e.addr + "/v1/stream?access_token=" + token
	if query != "" {
		u += "&" + query
	}
	return websocket.DefaultDialer.Dial(u, hdr)
}

// readEvent reads one event from a WebSocket.
func readEvent(t testing.TB, c *websocket.Conn) api.Event {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var ev api.Event
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// closeCode reads until the connection ends and returns its close code.
func closeCode(t testing.TB, c *websocket.Conn) (int, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Text
		}
		t.Fatalf("ended without a close frame: %v", err)
	}
}

// noEvent checks nothing arrives on c for a short while. It leaves the
// connection unusable for reads (gorilla keeps the timeout error), so it
// is the last read of a test.
func noEvent(t testing.TB, c *websocket.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, b, err := c.ReadMessage(); err == nil {
		t.Fatalf("unexpected event %s", b)
	}
}

func TestStreamWebSocketResumeNoGapNoDuplicate(t *testing.T) {
	e := newStreamEnv(t, gateway.Config{}, ticket.HubConfig{})
	tok := e.token(t, "a1", auth.RoleAgent)
	tk := e.open(t, "joe", "repairs")

	c := e.dial(t, tok, "ticket="+tk.ID, nil)
	want := []string{}
	// The hub delivers from its start; wait until this subscriber is live.
	poll.Until(t, 5*time.Second, 10*time.Millisecond, func() error {
		if e.hub.Stats().Subscribers != 1 {
			return errors.New("not subscribed yet")
		}
		return nil
	})
	for i := range 5 {
		want = append(want, e.post(t, tk.ID, api.EventMessage, fmt.Sprint("live ", i)).ID)
	}
	var got []string
	for range 5 {
		got = append(got, readEvent(t, c).ID)
	}
	c.Close()
	// Appended while the client is away.
	for i := range 20 {
		want = append(want, e.post(t, tk.ID, api.EventMessage, fmt.Sprint("away ", i)).ID)
	}
	c2 := e.dial(t, tok, "ticket="+tk.ID+"&after="+got[len(got)-1], nil)
	// Appends racing with the catch-up must come once, in order.
	var wg sync.WaitGroup
	wg.Add(1)
	var raced []string
	go func() {
		defer wg.Done()
		for i := range 20 {
			raced = append(raced, e.post(t, tk.ID, api.EventMessage, fmt.Sprint("race ", i)).ID)
		}
	}()
	for len(got) < 45 {
		got = append(got, readEvent(t, c2).ID)
	}
	wg.Wait()
	want = append(want, raced...)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
	noEvent(t, c2)
}

// sseClient reads an SSE stream.
type sseClient struct {
	res *http.Response
	r   *bufio.Reader
}

func (e *streamEnv) sse(t testing.TB, token, query string, hdr ...string) *sseClient {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+e.addr+"/v1/stream?"+query, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("sse: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	t.Cleanup(func() { res.Body.Close() })
	return &sseClient{res: res, r: bufio.NewReader(res.Body)}
}

// next returns the next SSE event's name, id and data (comments skipped).
func (s *sseClient) next(t testing.TB) (name, id, data string) {
	t.Helper()
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("sse read: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if data != "" {
				return name, id, data
			}
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "event: "):
			name = line[7:]
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		}
	}
}

func TestStreamSSELastEventID(t *testing.T) {
	e := newStreamEnv(t, gateway.Config{}, ticket.HubConfig{})
	tok := e.token(t, "joe", auth.RoleCustomer)
	tk := e.open(t, "joe", "repairs")
	first := e.post(t, tk.ID, api.EventMessage, "one")

	// ?after= replays; the stream then goes live.
	s := e.sse(t, tok, "after="+tk.LastEventID)
	if _, id, data := s.next(t); id != first.ID || !strings.Contains(data, `"one"`) {
		t.Fatalf("got %s %s", id, data)
	}
	second := e.post(t, tk.ID, api.EventMessage, "two")
	if _, id, _ := s.next(t); id != second.ID {
		t.Fatalf("got %s, want %s", id, second.ID)
	}
	s.res.Body.Close()

	missed := []string{e.post(t, tk.ID, api.EventMessage, "three").ID, e.post(t, tk.ID, api.EventMessage, "four").ID}
	// EventSource reconnects to the same URL with Last-Event-ID: the header
	// wins over the stale ?after=.
	s2 := e.sse(t, tok, "after="+tk.LastEventID, "Last-Event-ID", second.ID)
	for _, want := range missed {
		if _, id, _ := s2.next(t); id != want {
			t.Fatalf("got %s, want %s", id, want)
		}
	}
}

func TestStreamCustomerSeesOnlyOwnEvents(t *testing.T) {
	e := newStreamEnv(t, gateway.Config{}, ticket.HubConfig{})
	joe := e.dial(t, e.token(t, "joe", auth.RoleCustomer), "", nil)
	// Asking for someone else's customer or ticket narrows to nothing.
	spy := e.dial(t, e.token(t, "joe", auth.RoleCustomer), "customer=ann", nil)
	agent := e.dial(t, e.token(t, "a1", auth.RoleAgent), "status=open&queue=repairs", nil)
	poll.Until(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := e.hub.Stats().Subscribers; n != 3 {
			return fmt.Errorf("%d subscribers", n)
		}
		return nil
	})
	ann := e.open(t, "ann", "repairs")
	e.post(t, ann.ID, api.EventMessage, "ann's secret")
	tj := e.open(t, "joe", "billing")
	e.post(t, tj.ID, api.EventNote, "internal: joe is difficult")
	msg := e.post(t, tj.ID, api.EventMessage, "hi joe")

	if ev := readEvent(t, joe); ev.TicketID != tj.ID || ev.Type != api.EventTicketOpened {
		t.Fatalf("joe got %+v", ev)
	}
	if ev := readEvent(t, joe); ev.ID != msg.ID {
		t.Fatalf("joe got %+v, want his message (not the note)", ev)
	}
	// The agent's filters: queue repairs, status open: ann's two events only.
	for range 2 {
		if ev := readEvent(t, agent); ev.TicketID != ann.ID {
			t.Fatalf("agent got %+v", ev)
		}
	}
	noEvent(t, joe)
	noEvent(t, spy)
	noEvent(t, agent)
}

func TestStreamRefusals(t *testing.T) {
	e := newStreamEnv(t, gateway.Config{CORSOrigins: []string{"https://console.example.com"}}, ticket.HubConfig{})
	tok := e.token(t, "a1", auth.RoleAgent)

	t.Run("foreign origin", func(t *testing.T) {
		_, res, err := e.tryDial(tok, "", http.Header{"Origin": {"https://evil.example"}})
		if err == nil {
			t.Fatal("upgrade from a foreign origin succeeded")
		}
		readProblem(t, res, 403, api.CodeForbidden)
	})
	t.Run("allowed origins", func(t *testing.T) {
		for _, o := range []string{"https://console.example.com", "http://" + e.addr} {
			c, _, err := e.tryDial(tok, "", http.Header{"Origin": {o}})
			if err != nil {
				t.Fatalf("%s: %v", o, err)
			}
			c.Close()
		}
	})
	t.Run("no token", func(t *testing.T) {
		_, res, err := websocket.DefaultDialer.Dial("ws://"+e.addr+"/v1/stream", nil)
		if err == nil {
			t.Fatal("upgrade without a token succeeded")
		}
		readProblem(t, res, 401, api.CodeUnauthorized)
	})
	t.Run("access_token only on upgrades", func(t *testing.T) {
		res := e.do(t, "GET", "/v1/stream?access_token="+tok, "", nil, "Accept", "text/event-stream")
		readProblem(t, res, 401, api.CodeUnauthorized)
	})
	t.Run("neither websocket nor sse", func(t *testing.T) {
		readProblem(t, e.do(t, "GET", "/v1/stream", tok, nil), 400, api.CodeBadRequest)
	})
	t.Run("bad filter", func(t *testing.T) {
		_, res, err := e.tryDial(tok, "status=bogus", nil)
		if err == nil {
			t.Fatal("bad filter accepted")
		}
		readProblem(t, res, 422, api.CodeValidation)
	})
	t.Run("device role", func(t *testing.T) {
		_, res, _ := e.tryDial(e.token(t, "dev1", auth.RoleDevice), "", nil)
		readProblem(t, res, 403, api.CodeForbidden)
	})
	t.Run("10 MB frame closes with 1009", func(t *testing.T) {
		c := e.dial(t, tok, "", nil)
		go func() { _ = c.WriteMessage(websocket.BinaryMessage, make([]byte, 10<<20)) }()
		if code, _ := closeCode(t, c); code != websocket.CloseMessageTooBig {
			t.Fatalf("close code %d, want 1009", code)
		}
	})
}

func TestStreamSlowConsumerCutOff(t *testing.T) {
	const buffer = 32
	e := newStreamEnv(t, gateway.Config{}, ticket.HubConfig{Buffer: buffer})
	tok := e.token(t, "a1", auth.RoleAgent)
	tk := e.open(t, "joe", "repairs")
	slow := e.dial(t, tok, "", nil)
	fast := e.dial(t, tok, "", nil)
	poll.Until(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := e.hub.Stats().Subscribers; n != 2 {
			return fmt.Errorf("%d subscribers", n)
		}
		return nil
	})
	// Large events fill the slow client's socket buffers quickly; the fast
	// client keeps reading everything meanwhile.
	big := strings.Repeat("x", ticket.MaxText)
	var fastGot int
	for i := 0; e.hub.Stats().SlowConsumers == 0; i++ {
		if i > 5000 {
			t.Fatal("the slow consumer was never cut off")
		}
		ev := e.post(t, tk.ID, api.EventMessage, big)
		if got := readEvent(t, fast); got.ID != ev.ID {
			t.Fatalf("fast consumer got %s, want %s", got.ID, ev.ID)
		}
		fastGot++
	}
	// The fast one is still subscribed and still receives.
	ev := e.post(t, tk.ID, api.EventMessage, "after the cut")
	if got := readEvent(t, fast); got.ID != ev.ID {
		t.Fatalf("fast consumer got %s after the cut", got.ID)
	}
	if st := e.hub.Stats(); st.Subscribers != 1 || st.SlowConsumers != 1 {
		t.Fatalf("stats %+v", st)
	}
	// The slow one, reading at last, finds what it had and then 4008.
	code, reason := closeCode(t, slow)
	if code != gateway.CloseSlowConsumer || !strings.Contains(reason, "slow consumer") {
		t.Fatalf("close %d %q, want %d", code, reason, gateway.CloseSlowConsumer)
	}
	t.Logf("cut off after %d events of %d bytes; reason %q", fastGot, ticket.MaxText, reason)
}

func TestStreamShutdownTellsClientsToReconnect(t *testing.T) {
	e := newStreamEnv(t, gateway.Config{}, ticket.HubConfig{})
	tok := e.token(t, "a1", auth.RoleAgent)
	ws := e.dial(t, tok, "", nil)
	sse := e.sse(t, tok, "")
	poll.Until(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := e.hub.Stats().Subscribers; n != 2 {
			return fmt.Errorf("%d subscribers", n)
		}
		return nil
	})
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("shutdown took %v with streams open", d)
	}
	if code, _ := closeCode(t, ws); code != gateway.CloseServiceRestart {
		t.Fatalf("websocket close %d, want 1012", code)
	}
	if name, _, data := sse.next(t); name != "close" || !strings.Contains(data, `"code":1012`) {
		t.Fatalf("sse ended with %q %s", name, data)
	}
}
