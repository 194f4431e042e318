package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/device"
	"github.com/switchboard/switchboard/internal/tokenbucket"
)

// GET /v1/appliances/{id}/relay: the relaying phone's WebSocket, for a
// phone that stays near its appliance (one TLS handshake instead of one
// per batch, and commands pushed instead of polled). Who may open it is
// who may POST diagnostics: a relay token of that appliance issued to its
// current owner. Each text message is an api.RelayBatch; each is answered,
// in order, by a RelayMessage "reply" with the batch's ID and what POST
// would have answered. A refused batch leaves the connection open.
// Commands for the appliance arrive as RelayMessage "command", each once.
//
// The relay socket closes with:
//
//	1008  more than relayBurst batches at once, or more than relayRate a second after
//	1009  a message larger than the body limit (what POST accepts)
//	1012  node shutting down: reconnect
//	4001  relay token expired: refresh it, reconnect
//	4004  the appliance was released or transferred: this token relays no more
const (
	ClosePolicyViolation = fws.ClosePolicyViolation
	CloseRelayRevoked    = 4004
)

const (
	// relayBurst and relayRate bound one relay socket's batches. A phone
	// back in range sends its offline buffer at once (the SDK keeps
	// 10,000 frames: ten batches of 1,000), so a burst of 20 covers it
	// twice; after that, a batch a second is sixty times what an appliance
	// reporting once a minute needs.
	relayBurst = 20
	relayRate  = 1.0
	// maxBatchID bounds the ID a client gives a batch: it is echoed, not
	// kept, and 64 characters hold any UUID or counter.
	maxBatchID = 64
	localRelay = "relay"
)

// relayReq is a checked relay upgrade, carried into the WebSocket handler.
type relayReq struct {
	sess    *device.RelaySession
	expires time.Time
}

// relayUpgrade checks the relay session before the upgrade, so a token
// for another appliance gets POST's 404, not a socket.
func (s *Server) relayUpgrade() fiber.Handler {
	ws := websocket.New(s.counted(s.serveRelay), websocket.Config{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   4096,
		WriteBufferSize:  1024,
		WriteBufferPool:  &sync.Pool{},
	})
	return func(c *fiber.Ctx) error {
		if !websocket.IsWebSocketUpgrade(c) {
			return problem(400, api.CodeBadRequest, "this route needs a WebSocket upgrade; POST batches to /v1/appliances/{id}/diagnostics otherwise")
		}
		if s.draining.Load() {
			return &problemError{status: 503, code: api.CodeUnavailable, detail: "the relay is not available on this node; retry", retryAfter: 1}
		}
		sess, err := s.deps.Devices.OpenRelay(c.UserContext(), caller(c), c.Params("id"))
		if err != nil {
			return err
		}
		c.Locals(localRelay, &relayReq{sess: sess, expires: expiryOf(claimsOf(c))})
		return ws(c)
	}
}

// serveRelay runs one relay socket: this goroutine reads and answers
// batches; a writer goroutine pushes commands, pings, and watches
// shutdown and token expiry. Whichever ends the connection sends the
// close frame once; neither outlives the handler.
func (s *Server) serveRelay(conn *websocket.Conn) {
	req, _ := conn.Locals(localRelay).(*relayReq)
	if req == nil {
		_ = conn.Close()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wmu sync.Mutex // replies and commands share the socket
	write := func(m api.RelayMessage) error {
		raw, _ := json.Marshal(m)
		wmu.Lock()
		defer wmu.Unlock()
		_ = conn.SetWriteDeadline(time.Now().Add(writeWait))
		return conn.WriteMessage(fws.TextMessage, raw)
	}
	var once sync.Once
	var closing atomic.Bool // a close frame went out: drain before closing
	end := func(e ending) {
		once.Do(func() {
			if e.code != 0 {
				s.wsClose(conn, e) // WriteControl is safe beside WriteMessage
				closing.Store(true)
			}
			// The reader gets the client's close, or gives up soon.
			_ = conn.SetReadDeadline(time.Now().Add(closeWait))
			cancel()
		})
	}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.relayWriter(ctx, conn, req, write, end)
	}()
	defer func() {
		end(ending{})
		<-writerDone
		if closing.Load() {
			drain(conn)
		}
		_ = conn.Close()
	}()

	conn.SetReadLimit(int64(s.cfg.BodyLimit))
	_ = conn.SetReadDeadline(time.Now().Add(pongWait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(pongWait)) })
	rate := tokenbucket.New(relayBurst, relayRate, time.Now())
	for ctx.Err() == nil {
		typ, raw, err := conn.ReadMessage()
		if err != nil {
			return // includes ErrReadLimit, after the library sent 1009
		}
		_ = conn.SetReadDeadline(time.Now().Add(pongWait))
		if !rate.Allow(time.Now()) { // a malformed message counts too
			end(ending{ClosePolicyViolation, "too many batches: slow down"})
			return
		}
		reply, revoked := s.relayMessage(ctx, req.sess, typ, raw)
		if write(reply) != nil {
			return
		}
		if revoked {
			end(ending{CloseRelayRevoked, "the appliance was released or transferred: this relay token relays no more"})
			return
		}
	}
}

// relayWriter pushes the appliance's commands: those queued while the
// phone was away at once, then on each wake-up and, since pub/sub may
// lose a wake-up, at every ping.
func (s *Server) relayWriter(ctx context.Context, conn *websocket.Conn, req *relayReq,
	write func(api.RelayMessage) error, end func(ending)) {
	wake, unwatch, err := req.sess.WatchCommands(ctx)
	if err != nil {
		// Commands still arrive at the next ping; only promptness is lost.
		s.log.Warn("relay: command wake-ups unavailable", "err", err)
	} else {
		defer unwatch()
	}
	deliver := func() bool {
		cmds, err := req.sess.Commands(ctx)
		switch {
		case errors.Is(err, device.ErrNotFound):
			end(ending{CloseRelayRevoked, "the appliance was released or transferred: this relay token relays no more"})
			return false
		case err != nil:
			if ctx.Err() == nil {
				s.log.Warn("relay: commands not fetched", "err", err)
			}
			return ctx.Err() == nil
		}
		for i := range cmds {
			if write(api.RelayMessage{Type: api.RelayCommand, Command: &cmds[i]}) != nil {
				end(ending{})
				return false
			}
		}
		return true
	}
	if !deliver() {
		return
	}
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	check := time.NewTicker(idlePoll)
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake: // nil, and so never ready, without wake-ups
			if !deliver() {
				return
			}
		case now := <-ping.C:
			if conn.WriteControl(fws.PingMessage, nil, now.Add(writeWait)) != nil {
				end(ending{})
				return
			}
			if !deliver() {
				return
			}
		case now := <-check.C:
			if e, ok := s.socketEnding(req.expires, now, "relay token expired: refresh it and reconnect"); ok {
				end(e)
				return
			}
		}
	}
}

// relayMessage answers one message as POST .../diagnostics would; revoked
// says the token no longer relays for the appliance, so nothing later can
// succeed either.
func (s *Server) relayMessage(ctx context.Context, sess *device.RelaySession, typ int, raw []byte) (api.RelayMessage, bool) {
	reply := api.RelayMessage{Type: api.RelayReply}
	fail := func(err error) (api.RelayMessage, bool) {
		p, internal := toProblem(err)
		if internal {
			s.log.Error("relay batch failed", "id", reply.ID, "err", err)
		}
		reply.Problem = p.doc()
		return reply, errors.Is(err, device.ErrNotFound)
	}
	if typ != fws.TextMessage {
		return fail(problem(400, api.CodeBadRequest, "send each batch as a JSON text message"))
	}
	var b api.RelayBatch
	if err := strictJSON(raw, &b); err != nil {
		return fail(err)
	}
	if len(b.ID) > maxBatchID {
		return fail(problem(422, api.CodeValidation, "id must be at most 64 characters"))
	}
	reply.ID = b.ID
	// A batch the client sent is finished even if the connection ends
	// meanwhile, as a POST is.
	res, err := sess.Relay(context.WithoutCancel(ctx), b.Frames)
	if err != nil {
		return fail(err)
	}
	reply.Result = &res
	return reply, false
}
