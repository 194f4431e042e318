package gateway

import (
	"strconv"
	"strings"
	"sync"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/api"
)

// CloseTooManySockets closes a WebSocket whose user already holds
// Config.SocketsPerUser connections on this node (the upgrade raced
// another past the check that answers 429).
const CloseTooManySockets = 4029

// localSocketKey carries the user's key for sockets from the upgrade
// request to the connection.
const localSocketKey = "socketKey"

// sockets counts the long-lived connections (WebSocket and SSE) each user
// holds on this node. The request rate limit bounds how fast a user opens
// them, not how many stay open: without this one user could hold a
// goroutine pair, buffers and a subscription per socket up to the node's
// whole MaxConns.
//
// A connection is counted by the handler that serves it, from its first
// line to its return, so a count can never outlive its connection (an
// upgrade that fails after the check never reaches the handler). The check
// before the upgrade is what gives the client a 429; the count in the
// handler is what holds.
type sockets struct {
	max   int // <0: no limit
	mu    sync.Mutex
	n     map[string]int
	total int
}

func newSockets(max int) *sockets { return &sockets{max: max, n: map[string]int{}} }

// open is the number of connections counted now, for /metrics.
func (k *sockets) open() float64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return float64(k.total)
}

func (k *sockets) full(key string) bool {
	if k.max < 0 {
		return false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.n[key] >= k.max
}

func (k *sockets) acquire(key string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.max >= 0 && k.n[key] >= k.max {
		return false
	}
	k.n[key]++
	k.total++
	return true
}

func (k *sockets) release(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.total--
	if k.n[key]--; k.n[key] <= 0 {
		delete(k.n, key)
	}
}

// socketLimit refuses a WebSocket upgrade or an event stream with 429
// when the caller holds its limit of them already; other requests pass.
// It runs after authentication.
func (s *Server) socketLimit(c *fiber.Ctx) error {
	if !websocket.IsWebSocketUpgrade(c) && !strings.Contains(c.Get(fiber.HeaderAccept), "text/event-stream") {
		return c.Next()
	}
	cl := claimsOf(c)
	key := string(cl.Role) + ":" + cl.Subject
	if s.sockets.full(key) {
		return s.tooManySockets()
	}
	c.Locals(localSocketKey, key)
	return c.Next()
}

func (s *Server) tooManySockets() error {
	return &problemError{status: 429, code: api.CodeRateLimited, retryAfter: 1,
		detail: "at most " + strconv.Itoa(s.cfg.SocketsPerUser) + " open streams and WebSockets per user on this node; close one first"}
}

// counted wraps a WebSocket handler so the connection counts against its
// user's limit while it runs; one over the limit is closed at once.
func (s *Server) counted(serve func(*websocket.Conn)) func(*websocket.Conn) {
	return func(conn *websocket.Conn) {
		key, _ := conn.Locals(localSocketKey).(string)
		if !s.sockets.acquire(key) {
			s.wsClose(conn, ending{CloseTooManySockets, "too many open connections for this user"})
			_ = conn.Close()
			return
		}
		defer s.sockets.release(key)
		serve(conn)
	}
}
