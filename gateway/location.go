package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/location"
	"github.com/switchboard/switchboard/state"
)

// locationRoutes wires positions, technicians, stores and dispatch.
func (s *Server) locationRoutes(v1 fiber.Router) {
	staff := requireRole(auth.RoleAgent, auth.RoleAdmin)
	tech := requireRole(auth.RoleTechnician)
	admin := requireRole(auth.RoleAdmin)
	ws := websocket.New(s.counted(s.servePositionsWS), websocket.Config{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   4096,
		WriteBufferSize:  1024,
		WriteBufferPool:  &sync.Pool{},
	})
	v1.Get("/technicians/nearby", s.authenticate, staff, s.needLocation, s.nearbyTechnicians)
	v1.Get("/technicians/me/offer", s.authenticate, tech, s.needLocation, s.currentOffer)
	v1.Post("/technicians/me/offers/:offer/accept", s.authenticate, tech, s.needLocation, s.acceptOffer)
	v1.Post("/technicians/me/offers/:offer/decline", s.authenticate, tech, s.needLocation, s.declineOffer)
	v1.Post("/technicians/me/jobs/:ticket/complete", s.authenticate, tech, s.needLocation, s.completeJob)
	v1.Put("/technicians/me/duty", s.authenticate, tech, s.needLocation, s.setDuty)
	v1.Post("/technicians/:id/positions", s.authenticate, tech, s.needLocation, s.postPositions)
	v1.Get("/technicians/:id/positions", s.authenticate, requireRole(auth.RoleTechnician, auth.RoleAdmin), s.needLocation, s.positionHistory)
	v1.Get("/technicians/:id/positions/ws", s.checkOrigin, s.streamAuth, s.socketLimit, tech, s.needLocation, func(c *fiber.Ctx) error {
		if !websocket.IsWebSocketUpgrade(c) {
			return problem(400, api.CodeBadRequest, "this route needs a WebSocket upgrade; POST batches to /v1/technicians/me/positions otherwise")
		}
		id, err := selfID(c)
		if err != nil {
			return err
		}
		c.Locals(localPositions, &positionsReq{tech: id, expires: expiryOf(claimsOf(c))})
		return ws(c)
	})
	v1.Get("/technicians/:id/profile", s.authenticate, staff, s.needLocation, s.getProfile)
	v1.Put("/technicians/:id/profile", s.authenticate, admin, s.needLocation, s.putProfile)
	v1.Get("/stores/nearby", s.authenticate, s.needLocation, s.nearbyStores)
	v1.Post("/stores/import", s.authenticate, admin, s.needLocation, s.importStores)
	v1.Get("/stores/:id", s.authenticate, s.needLocation, s.getStore)
	v1.Put("/stores/:id", s.authenticate, admin, s.needLocation, s.putStore)
	v1.Delete("/stores/:id", s.authenticate, admin, s.needLocation, s.deleteStore)
	v1.Post("/tickets/:id/dispatch", s.authenticate, staff, s.needLocation, s.idempotent, s.dispatch)
	v1.Get("/tickets/:id/dispatch", s.authenticate, staff, s.needLocation, s.getDispatch)
	v1.Get("/tickets/:id/technician", s.authenticate, s.needLocation, s.ticketTechnician)
}

// needLocation answers 503 on a node built without the location service.
func (s *Server) needLocation(c *fiber.Ctx) error {
	if s.deps.Location == nil {
		return problem(503, api.CodeUnavailable, "location is not available on this node")
	}
	return c.Next()
}

// locationProblem maps the location domain's errors; nil for others.
func locationProblem(err error) *problemError {
	detail := func(sentinel error) string {
		msg := strings.TrimPrefix(err.Error(), sentinel.Error())
		msg = strings.TrimPrefix(msg, ": ")
		if msg == "" {
			msg = strings.TrimPrefix(sentinel.Error(), "location: ")
		}
		return msg
	}
	switch {
	case errors.Is(err, location.ErrInvalid):
		return &problemError{status: 422, code: api.CodeValidation, detail: detail(location.ErrInvalid)}
	case errors.Is(err, state.ErrInvalidCoordinates):
		// Defence in depth: the domain checks first, but a backend's
		// refusal is the caller's mistake too, never a 500.
		return &problemError{status: 422, code: api.CodeValidation, detail: "coordinates outside what the geo index holds (latitude ±85.05112878, longitude ±180)"}
	case errors.Is(err, location.ErrNotFound):
		return &problemError{status: 404, code: api.CodeNotFound, detail: detail(location.ErrNotFound)}
	case errors.Is(err, location.ErrForbidden):
		return &problemError{status: 403, code: api.CodeForbidden, detail: detail(location.ErrForbidden)}
	case errors.Is(err, location.ErrRateLimited):
		retry := location.RateWindow
		if rl := (*location.RateLimitError)(nil); errors.As(err, &rl) {
			retry = rl.RetryAfter
		}
		return &problemError{status: 429, code: api.CodeRateLimited, detail: detail(location.ErrRateLimited),
			retryAfter: int(math.Ceil(retry.Seconds()))}
	case errors.Is(err, location.ErrConflict):
		return &problemError{status: 409, code: api.CodeConflict, detail: detail(location.ErrConflict)}
	case errors.Is(err, location.ErrNoTechnician):
		return &problemError{status: 409, code: api.CodeConflict, detail: detail(location.ErrNoTechnician)}
	}
	return nil
}

// selfID is the technician a /technicians/:id/... route acts for: "me"
// or the caller's own ID; anyone else's is refused, so a technician
// cannot post positions for a colleague.
func selfID(c *fiber.Ctx) (string, error) {
	cl := claimsOf(c)
	id := c.Params("id")
	if id == "me" || (cl != nil && id == cl.Subject) {
		return cl.Subject, nil
	}
	if cl != nil && cl.Role == auth.RoleAdmin {
		return id, nil
	}
	return "", problem(403, api.CodeForbidden, "a technician acts only for themselves")
}

func expiryOf(cl *auth.Claims) time.Time {
	if cl != nil && cl.ExpiresAt != nil {
		return cl.ExpiresAt.Time
	}
	return time.Time{}
}

func (s *Server) postPositions(c *fiber.Ctx) error {
	id, err := selfID(c)
	if err != nil {
		return err
	}
	var b api.PositionBatch
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	res, err := s.deps.Location.Report(c.UserContext(), id, b.Fixes)
	if err != nil {
		return err
	}
	return c.JSON(res)
}

func (s *Server) positionHistory(c *fiber.Ctx) error {
	id, err := selfID(c)
	if err != nil {
		return err
	}
	var since time.Time
	if v := c.Query("since"); v != "" {
		if since, err = time.Parse(time.RFC3339, v); err != nil {
			return problem(400, api.CodeBadRequest, "since must be an RFC 3339 time")
		}
	}
	fixes, err := s.deps.Location.History(c.UserContext(), id, since)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"fixes": fixes})
}

func (s *Server) setDuty(c *fiber.Ctx) error {
	var req api.DutyRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	p, err := s.deps.Location.SetDuty(c.UserContext(), claimsOf(c).Subject, req.OnDuty)
	if err != nil {
		return err
	}
	return c.JSON(p)
}

func (s *Server) getProfile(c *fiber.Ctx) error {
	p, err := s.deps.Location.Profile(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(p)
}

func (s *Server) putProfile(c *fiber.Ctx) error {
	var req api.ProfileRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	p, err := s.deps.Location.SetProfile(c.UserContext(), c.Params("id"), req)
	if err != nil {
		return err
	}
	return c.JSON(p)
}

func (s *Server) currentOffer(c *fiber.Ctx) error {
	o, err := s.deps.Location.CurrentOffer(c.UserContext(), claimsOf(c).Subject)
	if err != nil {
		return err
	}
	return c.JSON(o)
}

func (s *Server) acceptOffer(c *fiber.Ctx) error {
	o, err := s.deps.Location.Accept(c.UserContext(), claimsOf(c).Subject, c.Params("offer"))
	if err != nil {
		return err
	}
	return c.JSON(o)
}

func (s *Server) declineOffer(c *fiber.Ctx) error {
	o, err := s.deps.Location.Decline(c.UserContext(), claimsOf(c).Subject, c.Params("offer"))
	if err != nil {
		return err
	}
	return c.JSON(o)
}

func (s *Server) completeJob(c *fiber.Ctx) error {
	if err := s.deps.Location.Complete(c.UserContext(), claimsOf(c).Subject, c.Params("ticket")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// queryFloat reads a required numeric query parameter.
func queryFloat(c *fiber.Ctx, name string, required bool) (float64, error) {
	v := c.Query(name)
	if v == "" {
		if required {
			return 0, problem(400, api.CodeBadRequest, name+" is required")
		}
		return 0, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, problem(400, api.CodeBadRequest, name+" must be a number")
	}
	return f, nil
}

func queryInt(c *fiber.Ctx, name string) (int, error) {
	v := c.Query(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		// A number too big for int is as wrong as a million: out of bounds.
		return 0, problem(422, api.CodeValidation, name+" must be a whole number from 1 to "+strconv.Itoa(location.MaxK))
	}
	return n, nil
}

// centre reads lat, lon and radius_m.
func centre(c *fiber.Ctx) (lat, lon, radius float64, err error) {
	if lat, err = queryFloat(c, "lat", true); err != nil {
		return
	}
	if lon, err = queryFloat(c, "lon", true); err != nil {
		return
	}
	radius, err = queryFloat(c, "radius_m", false)
	return
}

func (s *Server) nearbyTechnicians(c *fiber.Ctx) error {
	lat, lon, radius, err := centre(c)
	if err != nil {
		return err
	}
	k, err := queryInt(c, "k")
	if err != nil {
		return err
	}
	var skills []string
	if v := c.Query("skill"); v != "" {
		skills = strings.Split(v, ",")
	}
	techs, err := s.deps.Location.NearbyTechnicians(c.UserContext(), location.TechQuery{Lat: lat, Lon: lon, RadiusM: radius, Skills: skills, K: k})
	if err != nil {
		return err
	}
	return c.JSON(api.NearbyTechnicians{Technicians: techs})
}

func (s *Server) nearbyStores(c *fiber.Ctx) error {
	lat, lon, radius, err := centre(c)
	if err != nil {
		return err
	}
	k, err := queryInt(c, "k")
	if err != nil {
		return err
	}
	q := location.StoreQuery{Lat: lat, Lon: lon, RadiusM: radius, K: k, SKU: c.Query("sku"), Capability: c.Query("capability")}
	switch c.Query("open_now") {
	case "", "false", "0":
	case "true", "1":
		q.OpenNow = true
	default:
		return problem(400, api.CodeBadRequest, "open_now must be true or false")
	}
	stores, err := s.deps.Location.NearbyStores(c.UserContext(), q)
	if err != nil {
		return err
	}
	return c.JSON(api.NearbyStores{Stores: stores})
}

func (s *Server) getStore(c *fiber.Ctx) error {
	st, err := s.deps.Location.GetStore(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(st)
}

func (s *Server) putStore(c *fiber.Ctx) error {
	var st api.Store
	if err := bindJSON(c, &st); err != nil {
		return err
	}
	if st.ID != "" && st.ID != c.Params("id") {
		return problem(422, api.CodeValidation, "the body's id differs from the path's")
	}
	st.ID = c.Params("id")
	out, err := s.deps.Location.PutStore(c.UserContext(), st)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func (s *Server) deleteStore(c *fiber.Ctx) error {
	if err := s.deps.Location.DeleteStore(c.UserContext(), c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// importStores takes a CSV (text/csv) or GeoJSON (application/geo+json or
// application/json) catalogue; the body limit bounds its size.
func (s *Server) importStores(c *fiber.Ctx) error {
	ct := strings.ToLower(string(c.Request().Header.ContentType()))
	var (
		res api.ImportResult
		err error
	)
	switch {
	case strings.HasPrefix(ct, "text/csv"):
		res, err = s.deps.Location.ImportCSV(c.UserContext(), bytes.NewReader(c.Body()))
	case strings.HasPrefix(ct, "application/geo+json"), strings.HasPrefix(ct, fiber.MIMEApplicationJSON):
		res, err = s.deps.Location.ImportGeoJSON(c.UserContext(), c.Body())
	default:
		return problem(415, api.CodeUnsupportedMedia, "send text/csv or application/geo+json")
	}
	if err != nil {
		return err
	}
	return c.JSON(res)
}

func (s *Server) dispatch(c *fiber.Ctx) error {
	var req api.DispatchRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	d, err := s.deps.Location.Dispatch(c.UserContext(), viewer(c), c.Params("id"), req)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(d)
}

func (s *Server) getDispatch(c *fiber.Ctx) error {
	d, err := s.deps.Location.DispatchStatus(c.UserContext(), viewer(c), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(d)
}

func (s *Server) ticketTechnician(c *fiber.Ctx) error {
	p, err := s.deps.Location.TechnicianFor(c.UserContext(), viewer(c), c.Params("id"))
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(p)
}

// The positions WebSocket: each text message is a PositionBatch, each
// answer a PositionReply, in order. It exists for apps that keep a
// connection open while driving (one TLS handshake instead of one per
// batch); the rules are POST's.
const (
	localPositions = "positions"
	// positionsReadLimit bounds one message: a full batch (MaxBatch fixes
	// of about 150 bytes) with room to spare. Larger ends with 1009.
	positionsReadLimit = 128 << 10
)

type positionsReq struct {
	tech    string
	expires time.Time
}

func (s *Server) servePositionsWS(conn *websocket.Conn) {
	req, _ := conn.Locals(localPositions).(*positionsReq)
	if req == nil {
		_ = conn.Close()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	var closing atomic.Bool // a close frame went out: drain before closing
	end := func(e ending) {
		once.Do(func() {
			s.wsClose(conn, e) // WriteControl is safe beside WriteMessage
			closing.Store(true)
			cancel()
			// The reader gets the client's close, or gives up soon.
			_ = conn.SetReadDeadline(time.Now().Add(closeWait))
		})
	}
	conn.SetReadLimit(positionsReadLimit)
	_ = conn.SetReadDeadline(time.Now().Add(pongWait))
	conn.SetPongHandler(func(string) error {
		if ctx.Err() != nil {
			return nil // closing: a late pong must not undo closeWait
		}
		return conn.SetReadDeadline(time.Now().Add(pongWait))
	})
	// The watcher pings, and ends an idle socket on shutdown or token
	// expiry: the reader looks only when a batch comes, and a client that
	// answers pings may send none for hours. Owned by this handler,
	// stopped by cancel.
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		ping := time.NewTicker(pingEvery)
		defer ping.Stop()
		check := time.NewTicker(idlePoll)
		defer check.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-ping.C:
				if conn.WriteControl(fws.PingMessage, nil, now.Add(writeWait)) != nil {
					return
				}
			case now := <-check.C:
				if e, ok := s.socketEnding(req.expires, now, tokenExpired); ok {
					end(e)
					return
				}
			}
		}
	}()
	defer func() {
		cancel()
		<-watcherDone
		if closing.Load() {
			drain(conn)
		}
		_ = conn.Close()
	}()
	for {
		_, data, err := conn.ReadMessage()
		if err != nil || ctx.Err() != nil {
			return
		}
		if e, ok := s.socketEnding(req.expires, time.Now(), tokenExpired); ok {
			end(e)
			return
		}
		reply := s.positionsMessage(ctx, req.tech, data)
		out, _ := json.Marshal(reply)
		_ = conn.SetWriteDeadline(time.Now().Add(writeWait))
		if ctx.Err() != nil || conn.WriteMessage(fws.TextMessage, out) != nil {
			return
		}
	}
}

// positionsMessage handles one WebSocket message as POST would.
func (s *Server) positionsMessage(ctx context.Context, tech string, data []byte) api.PositionReply {
	fail := func(err error) api.PositionReply {
		p, internal := toProblem(err)
		if internal {
			s.log.Error("positions message failed", "technician", tech, "err", err)
		}
		return api.PositionReply{Problem: &api.Problem{Type: api.ProblemTypeBase + p.code, Title: http.StatusText(p.status),
			Status: p.status, Detail: p.detail, Code: p.code, RetryAfter: p.retryAfter}}
	}
	var b api.PositionBatch
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return fail(problem(400, api.CodeMalformedJSON, describeJSONError(err)))
	}
	res, err := s.deps.Location.Report(ctx, tech, b.Fixes)
	if err != nil {
		return fail(err)
	}
	return api.PositionReply{Result: &res}
}
