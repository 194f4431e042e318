package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/rtc"
)

// Click-to-call: POST /v1/calls, GET /v1/calls/{id}, DELETE /v1/calls/{id}
// (hang up or abandon), POST /v1/calls/{id}/callback, PUT
// /v1/agents/me/status, and the signaling WebSocket GET /v1/rtc.
//
// GET /v1/rtc closes with:
//
//	1012  node shutting down: reconnect (another node), join again, ICE-restart
//	4001  token expired: reconnect with a fresh token
//	4008  slow consumer: the client did not read its signals
//	4029  too many signaling messages (rtc.Config.SignalRate)
//	4003  no message within rtcHelloWait after the upgrade
//	1009  a message larger than rtcReadLimit
const (
	CloseRateLimited = 4029
	CloseIdle        = 4003
)

const (
	// rtcReadLimit bounds one signaling message: an offer is at most
	// rtc.MaxSDP, plus its JSON envelope and escaping.
	rtcReadLimit = rtc.MaxSDP + 16<<10
	// rtcHelloWait is how long a new connection may stay silent: a client
	// joins or pings at once, so a socket that says nothing is dropped.
	rtcHelloWait = 10 * time.Second
	localRTC     = "rtc"
)

// callRoutes wires click-to-call.
func (s *Server) callRoutes(v1 fiber.Router) {
	ws := websocket.New(s.counted(s.serveRTC), websocket.Config{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   4096,
		WriteBufferSize:  4096,
		WriteBufferPool:  &sync.Pool{},
	})
	v1.Post("/calls", s.authenticate, s.needCalls, s.idempotent, s.placeCall)
	v1.Get("/calls/:id", s.authenticate, s.needCalls, s.getCall)
	v1.Delete("/calls/:id", s.authenticate, s.needCalls, s.endCall)
	v1.Post("/calls/:id/callback", s.authenticate, s.needCalls, s.idempotent, s.callBack)
	v1.Put("/agents/me/status", s.authenticate, requireRole(auth.RoleAgent), s.needCalls, s.setAgentStatus)
	v1.Get("/rtc", s.checkOrigin, s.streamAuth, s.socketLimit, s.needCalls, func(c *fiber.Ctx) error {
		if !websocket.IsWebSocketUpgrade(c) {
			return problem(400, api.CodeBadRequest, "GET /v1/rtc needs a WebSocket upgrade")
		}
		c.Locals(localRTC, claimsOf(c))
		return ws(c)
	})
	s.consoleRoutes()
}

func (s *Server) needCalls(c *fiber.Ctx) error {
	if s.deps.Calls == nil || s.draining.Load() {
		return &problemError{status: 503, code: api.CodeUnavailable, detail: "calls are not available on this node; retry", retryAfter: 1}
	}
	return c.Next()
}

func rtcUser(c *fiber.Ctx) rtc.User { return rtc.UserFrom(claimsOf(c)) }

func (s *Server) placeCall(c *fiber.Ctx) error {
	var req api.PlaceCallRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	u := rtcUser(c)
	call, err := s.deps.Calls.Place(c.UserContext(), u, req)
	if err != nil {
		return err
	}
	scheme := "ws"
	if c.Protocol() == "https" {
		scheme = "wss"
	}
	c.Location("/v1/calls/" + call.ID)
	return c.Status(fiber.StatusCreated).JSON(api.PlacedCall{Call: call, SignalingURL: scheme + "://" + c.Hostname() + "/v1/rtc",
		ICEServers: s.deps.Calls.ICEServers(u.ID)})
}

func (s *Server) getCall(c *fiber.Ctx) error {
	call, err := s.deps.Calls.Get(c.UserContext(), rtcUser(c), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(call)
}

func (s *Server) endCall(c *fiber.Ctx) error {
	call, err := s.deps.Calls.End(c.UserContext(), rtcUser(c), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(call)
}

func (s *Server) callBack(c *fiber.Ctx) error {
	var req api.CallBackRequest
	if len(c.Body()) > 0 {
		if err := bindJSON(c, &req); err != nil {
			return err
		}
	}
	call, fu, err := s.deps.Calls.CallBack(c.UserContext(), rtcUser(c), c.Params("id"), req)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"call": call, "follow_up": fu})
}

func (s *Server) setAgentStatus(c *fiber.Ctx) error {
	var req api.AgentStatusRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	a, err := s.deps.Calls.SetStatus(c.UserContext(), rtcUser(c), req.Status)
	if err != nil {
		return err
	}
	return c.JSON(a)
}

// serveRTC runs one signaling connection: this goroutine reads and hands
// messages to the session; a writer goroutine sends what the session
// queues, pings, and watches token expiry. Neither outlives the handler.
func (s *Server) serveRTC(conn *websocket.Conn) {
	cl, _ := conn.Locals(localRTC).(*auth.Claims)
	if cl == nil {
		_ = conn.Close()
		return
	}
	u := rtc.UserFrom(cl)
	sess, err := s.deps.Calls.Hub().Open(u)
	if err != nil {
		s.wsClose(conn, ending{CloseServiceRestart, "service restart: reconnect"})
		_ = conn.Close()
		return
	}
	defer sess.Close()
	var expires time.Time
	if cl.ExpiresAt != nil {
		expires = cl.ExpiresAt.Time
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	endc := make(chan ending, 1)
	// stop ends the connection with e (the first reason given wins). The
	// reader may be blocked in ReadMessage for up to pongWait: a read
	// deadline of now wakes it, so an expired token or a drain closes the
	// connection at once, not at the client's next message.
	stop := func(e ending) {
		select {
		case endc <- e:
		default:
		}
		cancel()
		_ = conn.SetReadDeadline(time.Now())
	}
	writerDone := make(chan struct{})
	var wmu sync.Mutex // the writer and the reader's error replies share the socket
	write := func(sig api.Signal) error {
		raw, _ := json.Marshal(sig)
		wmu.Lock()
		defer wmu.Unlock()
		_ = conn.SetWriteDeadline(time.Now().Add(writeWait))
		return conn.WriteMessage(fws.TextMessage, raw)
	}
	go func() {
		defer close(writerDone)
		ping := time.NewTicker(pingEvery)
		defer ping.Stop()
		check := time.NewTicker(idlePoll)
		defer check.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-sess.Done():
				stop(ending{CloseSlowConsumer, "slow consumer: reconnect"})
				return
			case sig := <-sess.Out():
				if write(sig) != nil {
					stop(ending{})
					return
				}
			case now := <-ping.C:
				sess.Tick(ctx)
				wmu.Lock()
				err := conn.WriteControl(fws.PingMessage, nil, now.Add(writeWait))
				wmu.Unlock()
				if err != nil {
					stop(ending{})
					return
				}
			case now := <-check.C:
				if e, ok := s.socketEnding(expires, now, tokenExpired); ok {
					stop(e)
					return
				}
			}
		}
	}()

	conn.SetReadLimit(rtcReadLimit)
	_ = conn.SetReadDeadline(time.Now().Add(rtcHelloWait))
	conn.SetPongHandler(func(string) error {
		if ctx.Err() != nil {
			return conn.SetReadDeadline(time.Now()) // stopping: a late pong must not keep the reader waiting
		}
		return conn.SetReadDeadline(time.Now().Add(pongWait))
	})
	first := true
	for ctx.Err() == nil {
		_, raw, err := conn.ReadMessage()
		if err != nil {
			if first && errors.Is(err, errTimeout(err)) {
				stop(ending{CloseIdle, "no message: join or ping right after connecting"})
			} else {
				stop(ending{})
			}
			break
		}
		if first {
			first = false
			_ = conn.SetReadDeadline(time.Now().Add(pongWait))
		}
		var sig api.Signal
		if err := json.Unmarshal(raw, &sig); err != nil {
			if !sess.Allow(time.Now()) { // a malformed message still counts against the rate
				stop(ending{CloseRateLimited, "too many signaling messages"})
				break
			}
			_ = write(api.Signal{Type: api.SigError, Code: api.CodeMalformedJSON, Detail: "a signal is one JSON object"})
			continue
		}
		_ = conn.SetReadDeadline(time.Now().Add(pongWait))
		if err := sess.Handle(ctx, sig); err != nil {
			if errors.Is(err, rtc.ErrRateLimited) {
				stop(ending{CloseRateLimited, "too many signaling messages"})
				break
			}
			p, internal := toProblem(err)
			if internal {
				s.log.Error("signal failed", "type", sig.Type, "err", err)
			}
			_ = write(api.Signal{Type: api.SigError, CallID: sig.CallID, Code: p.code, Detail: p.detail})
		}
	}
	cancel()
	<-writerDone
	var end ending
	select {
	case end = <-endc:
	default:
	}
	if end.code != 0 {
		wmu.Lock()
		s.wsClose(conn, end)
		wmu.Unlock()
		drain(conn)
	}
	_ = conn.Close()
}

// errTimeout returns err when it is a read deadline, so errors.Is matches.
func errTimeout(err error) error {
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return err
	}
	return errNoTimeout
}

var errNoTimeout = errors.New("not a timeout")

// rtcProblem maps the rtc domain's errors; nil for anything else.
func rtcProblem(err error) *problemError {
	detail := func() string {
		msg := domainDetail(err)
		if _, rest, ok := strings.Cut(msg, ": "); ok {
			return rest
		}
		return msg
	}
	switch {
	case errors.Is(err, rtc.ErrNotFound):
		return &problemError{status: 404, code: api.CodeNotFound, detail: "no such call"}
	case errors.Is(err, rtc.ErrBadSDP), errors.Is(err, rtc.ErrInvalid):
		return &problemError{status: 422, code: api.CodeValidation, detail: detail()}
	case errors.Is(err, rtc.ErrForbidden):
		return &problemError{status: 403, code: api.CodeForbidden, detail: detail()}
	case errors.Is(err, rtc.ErrConflict):
		return &problemError{status: 409, code: api.CodeConflict, detail: detail()}
	case errors.Is(err, rtc.ErrQueueFull), errors.Is(err, rtc.ErrNoMedia):
		return &problemError{status: 503, code: api.CodeUnavailable, detail: detail(), retryAfter: 5}
	case errors.Is(err, rtc.ErrRateLimited):
		return &problemError{status: 429, code: api.CodeRateLimited, detail: "too many signaling messages"}
	}
	return nil
}
