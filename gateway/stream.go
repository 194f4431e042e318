package gateway

import (
	"bufio"
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/ticket"
)

// GET /v1/stream: the live ticket stream, as a WebSocket or, when asked
// with Accept: text/event-stream, as Server-Sent Events. Every message is
// one api.Event as JSON. Resume with ?after=<event id> or the
// Last-Event-ID header (which wins: EventSource sends it on reconnect,
// while the URL still carries the first ?after=).
//
// Authentication: a bearer token in Authorization, as everywhere. Browsers
// cannot set headers on a WebSocket, so a WebSocket upgrade (and only an
// upgrade) may carry the token as ?access_token= instead. The access log
// records the path without its query, so the token is never logged.
//
// How a stream ends, so clients know what to do:
//
//	WebSocket close   SSE "close" event   meaning
//	1012              code 1012           node shutting down: reconnect (another node) with after=<last id>
//	4001              code 4001           token expired: reconnect with a fresh token and after=<last id>
//	4008              code 4008           slow consumer: buffer overflowed; reconnect with after=<last id>
//	4010              code 4010           too far behind to replay: reload the timeline, then reconnect
//	1009              (WebSocket only)    a client frame larger than wsReadLimit
//	1011              code 1011           server error
const (
	CloseServiceRestart = 1012
	CloseTokenExpired   = 4001
	CloseSlowConsumer   = 4008
	CloseReplayTooLong  = 4010
	CloseInternal       = 1011
)

const (
	// wsReadLimit bounds a client's WebSocket message. The feed expects
	// nothing from clients but pongs and a close, so 4 KiB is generous; a
	// larger frame ends the connection with 1009 (message too big).
	wsReadLimit = 4 << 10
	// pingEvery and pongWait keep idle connections alive through proxies
	// (nginx and most load balancers drop idle ones after 60s) and find
	// dead peers: one missed pong and the connection is closed.
	pingEvery = 25 * time.Second
	pongWait  = 2*pingEvery + 10*time.Second
	// writeWait bounds one write. A client that accepts no data for this
	// long is gone or stalled; its buffer will overflow anyway.
	writeWait = 10 * time.Second
	// closeWait is how long we wait for the client's answer to our close
	// frame before dropping the TCP connection.
	closeWait = time.Second
	// idlePoll is how often an idle stream checks for shutdown and token
	// expiry. Shutdown is observed within it.
	idlePoll = 250 * time.Millisecond
	// sseRetryMs is the reconnect delay SSE clients are told to use.
	sseRetryMs = "2000"
)

const localStream = "stream"

// streamReq is a validated stream request, carried into the WebSocket
// handler through Locals.
type streamReq struct {
	viewer  ticket.Viewer
	filter  ticket.Filter
	after   string
	expires time.Time
}

// streamRoutes wires the live feed.
func (s *Server) streamRoutes(v1 fiber.Router) {
	ws := websocket.New(s.counted(s.serveWS), websocket.Config{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   1024,
		WriteBufferSize:  4096,
		WriteBufferPool:  &sync.Pool{},
	})
	v1.Get("/stream", s.checkOrigin, s.streamAuth, s.socketLimit, func(c *fiber.Ctx) error {
		req, err := s.streamRequest(c)
		if err != nil {
			return err
		}
		if websocket.IsWebSocketUpgrade(c) {
			c.Locals(localStream, req)
			return ws(c)
		}
		if strings.Contains(c.Get(fiber.HeaderAccept), "text/event-stream") {
			return s.serveSSE(c, req)
		}
		return problem(400, api.CodeBadRequest, "GET /v1/stream needs a WebSocket upgrade or Accept: text/event-stream")
	})
}

// checkOrigin refuses a WebSocket upgrade from a browser page of another
// site (cross-site WebSocket hijacking): the Origin must be this host or
// one of the configured CORS origins. Clients that send no Origin (apps,
// servers) are not browsers and pass.
func (s *Server) checkOrigin(c *fiber.Ctx) error {
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" || !websocket.IsWebSocketUpgrade(c) {
		return c.Next()
	}
	for _, o := range s.cfg.CORSOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return c.Next()
		}
	}
	if u, err := url.Parse(origin); err == nil && u.Host != "" && strings.EqualFold(u.Host, c.Hostname()) {
		return c.Next()
	}
	return problem(403, api.CodeForbidden, "WebSocket upgrades from this origin are not allowed")
}

// streamAuth is authenticate, plus ?access_token= on WebSocket upgrades.
func (s *Server) streamAuth(c *fiber.Ctx) error {
	if c.Get(fiber.HeaderAuthorization) == "" && websocket.IsWebSocketUpgrade(c) {
		if tok := c.Query("access_token"); tok != "" {
			c.Request().Header.Set(fiber.HeaderAuthorization, "Bearer "+tok)
		}
	}
	return s.authenticate(c)
}

// streamRequest reads and checks the viewer, filters and resume point, so
// mistakes get an HTTP answer before any upgrade.
func (s *Server) streamRequest(c *fiber.Ctx) (*streamReq, error) {
	if s.deps.Hub == nil || s.draining.Load() {
		return nil, &problemError{status: 503, code: api.CodeUnavailable, detail: "the live feed is not available on this node; retry", retryAfter: 1}
	}
	cl := claimsOf(c)
	req := &streamReq{
		viewer: ticket.ViewerFrom(cl),
		filter: ticket.Filter{
			Queue:    c.Query("queue"),
			Status:   api.TicketStatus(c.Query("status")),
			Customer: c.Query("customer"),
			Ticket:   c.Query("ticket"),
		},
		after: c.Query("after"),
	}
	if id := c.Get("Last-Event-ID"); id != "" {
		req.after = id
	}
	if cl.ExpiresAt != nil {
		req.expires = cl.ExpiresAt.Time
	}
	if err := s.deps.Hub.Check(req.viewer, req.filter, req.after); err != nil {
		return nil, err
	}
	return req, nil
}

// ending is why a stream ends, as a close code and reason.
type ending struct {
	code   int
	reason string
}

// follow delivers sub's events with send until the stream must end; it
// returns why (a zero ending: the client went away). idle is called when
// nothing happened for idlePoll, with the time, to send keepalives.
func (s *Server) follow(ctx context.Context, req *streamReq, sub *ticket.Subscription,
	send func(*ticket.Frame) error, idle func(time.Time) error) ending {
	last := req.after
	resume := func() string {
		if last == "" {
			return ""
		}
		return " after=" + last
	}
	for {
		if s.draining.Load() {
			return ending{CloseServiceRestart, "service restart: reconnect" + resume()}
		}
		f, err := sub.Next(ctx, idlePoll)
		switch {
		case err == nil && f != nil:
			if err := send(f); err != nil {
				return ending{}
			}
			last = f.Event.ID
			continue
		case err == nil:
			now := time.Now()
			if !req.expires.IsZero() && now.After(req.expires) {
				return ending{CloseTokenExpired, tokenExpired + resume()}
			}
			if err := idle(now); err != nil {
				return ending{}
			}
			continue
		case errors.Is(err, ticket.ErrSlowConsumer):
			return ending{CloseSlowConsumer, "slow consumer: reconnect" + resume()}
		case errors.Is(err, ticket.ErrReplayTooLong):
			return ending{CloseReplayTooLong, "too far behind: reload the timeline, then reconnect"}
		case errors.Is(err, ticket.ErrHubStopped):
			return ending{CloseServiceRestart, "service restart: reconnect" + resume()}
		case ctx.Err() != nil:
			return ending{}
		}
		s.log.Error("stream failed", "err", err, "sub", req.viewer.ID)
		return ending{CloseInternal, "server error: reconnect" + resume()}
	}
}

// serveWS runs one WebSocket: this goroutine writes, a second reads (pongs,
// the close handshake, and the size limit) and cancels the writer when the
// client goes away. Neither outlives the handler.
func (s *Server) serveWS(conn *websocket.Conn) {
	req, _ := conn.Locals(localStream).(*streamReq)
	if req == nil {
		_ = conn.Close()
		return
	}
	sub, err := s.deps.Hub.Subscribe(req.viewer, req.filter, req.after)
	if err != nil {
		// Check passed before the upgrade, so only shutdown gets here.
		s.wsClose(conn, ending{CloseServiceRestart, "service restart: reconnect"})
		_ = conn.Close()
		return
	}
	defer sub.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	readerDone := make(chan struct{})
	conn.SetReadLimit(wsReadLimit)
	_ = conn.SetReadDeadline(time.Now().Add(pongWait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(pongWait)) })
	go func() {
		defer close(readerDone)
		defer cancel()
		for {
			if _, _, err := conn.NextReader(); err != nil {
				return // includes ErrReadLimit, after the library sent 1009
			}
		}
	}()

	lastPing := time.Now()
	end := s.follow(ctx, req, sub,
		func(f *ticket.Frame) error {
			_ = conn.SetWriteDeadline(time.Now().Add(writeWait))
			return conn.WriteMessage(fws.TextMessage, f.JSON)
		},
		func(now time.Time) error {
			if now.Sub(lastPing) < pingEvery {
				return nil
			}
			lastPing = now
			return conn.WriteControl(fws.PingMessage, nil, now.Add(writeWait))
		})
	if end.code != 0 {
		s.wsClose(conn, end)
		// Give the client a moment to answer the close, so it reads our
		// frame before the TCP connection goes.
		select {
		case <-readerDone:
		case <-time.After(closeWait):
		}
	}
	_ = conn.Close()
	<-readerDone
}

func (s *Server) wsClose(conn *websocket.Conn, end ending) {
	_ = conn.WriteControl(fws.CloseMessage, fws.FormatCloseMessage(end.code, end.reason), time.Now().Add(closeWait))
}

// tokenExpired is the close reason of a socket whose access token expired.
const tokenExpired = "token expired: reconnect with a fresh token"

// socketEnding says whether a long-lived socket must end now, and with
// what close: the node is draining, or the token that opened it expired
// (at expires; zero: never), which closes with the reason expired.
func (s *Server) socketEnding(expires, now time.Time, expired string) (ending, bool) {
	switch {
	case s.draining.Load():
		return ending{CloseServiceRestart, "service restart: reconnect"}, true
	case !expires.IsZero() && now.After(expires):
		return ending{CloseTokenExpired, expired}, true
	}
	return ending{}, false
}

// drain reads and drops what the client still sends after our close
// frame, until its own close or closeWait. Closing a socket that holds
// unread data makes the kernel reset the connection, and a client still
// sending (a flood, say) would lose our close frame, and its code, in
// the reset.
func drain(conn *websocket.Conn) {
	_ = conn.SetReadDeadline(time.Now().Add(closeWait))
	for {
		if _, _, err := conn.NextReader(); err != nil {
			return
		}
	}
}

// serveSSE streams events as Server-Sent Events: "id:" is the event ID, so
// EventSource resumes with Last-Event-ID by itself; comments keep the
// connection alive; a final "close" event says why the stream ended
// (same codes as the WebSocket close).
func (s *Server) serveSSE(c *fiber.Ctx, req *streamReq) error {
	// Counted from here until the stream's writer returns (fasthttp runs
	// it on its own goroutine, always), like a WebSocket's handler.
	key, _ := c.Locals(localSocketKey).(string)
	if !s.sockets.acquire(key) {
		return s.tooManySockets()
	}
	sub, err := s.deps.Hub.Subscribe(req.viewer, req.filter, req.after)
	if err != nil {
		s.sockets.release(key)
		return err
	}
	c.Set(fiber.HeaderContentType, "text/event-stream; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set("X-Accel-Buffering", "no") // nginx: don't buffer the stream
	conn := c.Context().Conn()
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer s.sockets.release(key)
		defer sub.Close()
		flush := func() error {
			// fasthttp set one write deadline for the whole response;
			// extend it per write, or every stream dies at WriteTimeout.
			_ = conn.SetWriteDeadline(time.Now().Add(writeWait))
			return w.Flush()
		}
		w.WriteString("retry: " + sseRetryMs + "\n: live\n\n")
		if flush() != nil {
			return
		}
		lastBeat := time.Now()
		end := s.follow(context.Background(), req, sub,
			func(f *ticket.Frame) error {
				w.WriteString("id: ")
				w.WriteString(f.Event.ID)
				w.WriteString("\ndata: ")
				w.Write(f.JSON) // JSON never holds a raw newline
				w.WriteString("\n\n")
				lastBeat = time.Now()
				return flush()
			},
			func(now time.Time) error {
				if now.Sub(lastBeat) < sseHeartbeat {
					return nil
				}
				lastBeat = now
				w.WriteString(": keepalive\n\n")
				return flush()
			})
		if end.code != 0 {
			w.WriteString("event: close\ndata: {\"code\":")
			w.WriteString(strconv.Itoa(end.code))
			w.WriteString(",\"reason\":\"")
			w.WriteString(end.reason) // our own text: no quotes or newlines
			w.WriteString("\"}\n\n")
			_ = flush()
		}
	})
	return nil
}

// sseHeartbeat is the comment interval on an idle SSE stream: under the
// common 60s proxy idle timeout, and how soon a vanished client is found.
const sseHeartbeat = 15 * time.Second
