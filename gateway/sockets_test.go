package gateway_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/gateway"
	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/ticket"
)

// TestSocketsPerUser: a user holds at most SocketsPerUser WebSockets and
// event streams on a node, counted together; one more gets 429 with
// Retry-After, other users are not affected, and closing one frees its
// place.
func TestSocketsPerUser(t *testing.T) {
	e := newStreamEnv(t, gateway.Config{SocketsPerUser: 3}, ticket.HubConfig{})
	tk := e.open(t, "joe", "")
	joe := e.token(t, "joe", auth.RoleCustomer)
	// The node counts a socket once its handler runs, just after the
	// upgrade's answer: wait for each, so the next check sees it.
	ws1 := e.dial(t, joe, "", nil)
	socketsOpen(t, e.env, 1)
	e.dial(t, joe, "", nil)
	socketsOpen(t, e.env, 2)
	sse := e.sse(t, joe, "")
	socketsOpen(t, e.env, 3)

	_, res, err := e.tryDial(joe, "", nil)
	if err == nil {
		t.Fatal("a fourth socket was upgraded")
	}
	if res.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	readProblem(t, res, 429, api.CodeRateLimited)
	readProblem(t, e.do(t, "GET", "/v1/stream", joe, nil, "Accept", "text/event-stream"), 429, api.CodeRateLimited)
	// Other users, and joe's other requests, go on.
	e.dial(t, e.token(t, "ann", auth.RoleCustomer), "", nil)
	socketsOpen(t, e.env, 4)
	decodeJSON(t, e.do(t, "GET", "/v1/tickets", joe, nil), 200, nil)

	// A closed socket frees its place once the node sees it end: a
	// WebSocket at once (its reader fails), an event stream at its next
	// write (an event here, else the heartbeat).
	ws1.Close()
	socketsOpen(t, e.env, 3)
	e.dial(t, joe, "", nil)
	socketsOpen(t, e.env, 4)
	sse.res.Body.Close()
	poll.Until(t, 20*time.Second, 50*time.Millisecond, func() error {
		e.post(t, tk.ID, api.EventMessage, "anyone there?")
		if n := e.scrape(t)["switchboard_http_sockets_open"]; n != 3 {
			return fmt.Errorf("%v sockets open after the event stream closed, want 3", n)
		}
		return nil
	})
	e.dial(t, joe, "", nil)
}

// socketsOpen waits until the node counts n open sockets.
func socketsOpen(t testing.TB, e *env, n float64) {
	t.Helper()
	poll.Until(t, 20*time.Second, 10*time.Millisecond, func() error {
		if got := e.scrape(t)["switchboard_http_sockets_open"]; got != n {
			return fmt.Errorf("%v sockets open, want %v", got, n)
		}
		return nil
	})
}

// TestSocketsPerUserConcurrent: sockets opened all at once, racing past
// the check before the upgrade, still end with at most the limit open:
// the rest are refused with 429 or closed with 4029 at once.
func TestSocketsPerUserConcurrent(t *testing.T) {
	const limit, tries = 3, 12
	e := newStreamEnv(t, gateway.Config{SocketsPerUser: limit}, ticket.HubConfig{})
	tk := e.open(t, "max", "")
	// Each socket resumes after this event, so the one posted below
	// reaches it however late its handler subscribes.
	base := e.post(t, tk.ID, api.EventMessage, "are you there?")
	tok := e.token(t, "max", auth.RoleCustomer)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		conns   []*websocket.Conn
		refused int
	)
	for range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, res, err := e.tryDial(tok, "after="+base.ID, nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				conns = append(conns, c)
			case res != nil && res.StatusCode == 429:
				refused++
			default:
				t.Errorf("dial: %v", err)
			}
		}()
	}
	wg.Wait()
	for _, c := range conns {
		t.Cleanup(func() { c.Close() })
	}
	// Each upgraded socket either gets the next event (it is open) or is
	// closed with 4029.
	ev := e.post(t, tk.ID, api.EventMessage, "hello")
	open, closed := 0, 0
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, b, err := c.ReadMessage()
		var ce *websocket.CloseError
		switch {
		case err == nil:
			var got api.Event
			if json.Unmarshal(b, &got) != nil || got.ID != ev.ID {
				t.Fatalf("an open socket got %s", b)
			}
			open++
		case errors.As(err, &ce) && ce.Code == gateway.CloseTooManySockets:
			closed++
		default:
			t.Fatalf("read: %v", err)
		}
	}
	if open < 1 || open > limit || open+closed+refused != tries {
		t.Fatalf("%d open, %d closed with 4029, %d refused with 429 of %d; want 1 to %d open", open, closed, refused, tries, limit)
	}
	socketsOpen(t, e.env, float64(open))
}

// TestSocketsPerUserAcrossRoutes: the signaling WebSocket counts against
// the same limit (the default, 32) as the live feed.
func TestSocketsPerUserAcrossRoutes(t *testing.T) {
	e := newCallEnv(t, nil, nil, "node-a", nil)
	tok := e.token(t, "joe", auth.RoleCustomer)
	host := strings.TrimPrefix(e.base, "http://")
	dial := func(path string) (*websocket.Conn, *http.Response, error) {
		return websocket.DefaultDialer.Dial("ws://"+host+path+"?access_token="+tok, nil)
	}
	for i := range 32 {
		path := "/v1/stream"
		if i%2 == 0 {
			path = "/v1/rtc"
		}
		c, _, err := dial(path)
		if err != nil {
			t.Fatalf("socket %d on %s: %v", i+1, path, err)
		}
		t.Cleanup(func() { c.Close() })
		if path == "/v1/rtc" { // a silent signaling socket is dropped
			if err := c.WriteJSON(api.Signal{Type: api.SigPing}); err != nil {
				t.Fatal(err)
			}
		}
		socketsOpen(t, e.env, float64(i+1))
	}
	for _, path := range []string{"/v1/rtc", "/v1/stream"} {
		_, res, err := dial(path)
		if err == nil {
			t.Fatalf("a 33rd socket on %s was upgraded", path)
		}
		readProblem(t, res, 429, api.CodeRateLimited)
	}
}
