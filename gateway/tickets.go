package gateway

import (
	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/ticket"
)

// ticketRoutes wires the ticket stream's HTTP side.
func (s *Server) ticketRoutes(v1 fiber.Router) {
	v1.Post("/tickets", s.authenticate, s.idempotent, s.openTicket)
	v1.Get("/tickets", s.authenticate, s.listTickets)
	v1.Get("/tickets/:id", s.authenticate, s.getTicket)
	v1.Patch("/tickets/:id", s.authenticate, s.updateTicket)
	v1.Post("/tickets/:id/events", s.authenticate, s.idempotent, s.postEvent)
	v1.Get("/customers/:id/timeline", s.authenticate, s.customerTimeline)
	v1.Post("/tickets/:id/follow-ups", s.authenticate, s.idempotent, s.scheduleFollowUp)
	v1.Post("/identities", s.authenticate, requireRole(auth.RoleAgent, auth.RoleAdmin), s.idempotent, s.linkIdentity)
	v1.Post("/ingest/:channel", s.ingest)
}

func viewer(c *fiber.Ctx) ticket.Viewer { return ticket.ViewerFrom(claimsOf(c)) }

func (s *Server) openTicket(c *fiber.Ctx) error {
	var req api.OpenTicketRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	t, err := s.deps.Tickets.Open(c.UserContext(), viewer(c), req)
	if err != nil {
		return err
	}
	c.Location("/v1/tickets/" + t.ID)
	return c.Status(fiber.StatusCreated).JSON(t)
}

func (s *Server) listTickets(c *fiber.Ctx) error {
	list, err := s.deps.Tickets.List(c.UserContext(), viewer(c), ticket.ListOptions{
		Status: api.TicketStatus(c.Query("status")),
		Queue:  c.Query("queue"),
		Limit:  c.QueryInt("limit"),
		Cursor: c.Query("cursor"),
	})
	if err != nil {
		return err
	}
	return c.JSON(list)
}

func (s *Server) getTicket(c *fiber.Ctx) error {
	view, err := s.deps.Tickets.Timeline(c.UserContext(), viewer(c), c.Params("id"), c.Query("after"), c.QueryInt("limit"))
	if err != nil {
		return err
	}
	return c.JSON(view)
}

func (s *Server) updateTicket(c *fiber.Ctx) error {
	var req api.UpdateTicketRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	t, err := s.deps.Tickets.Update(c.UserContext(), viewer(c), c.Params("id"), req)
	if err != nil {
		return err
	}
	return c.JSON(t)
}

func (s *Server) postEvent(c *fiber.Ctx) error {
	var req api.PostEventRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	ev, err := s.deps.Tickets.Post(c.UserContext(), viewer(c), c.Params("id"), req.Type, req.Payload)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(ev)
}

func (s *Server) customerTimeline(c *fiber.Ctx) error {
	tl, err := s.deps.Tickets.CustomerTimeline(c.UserContext(), viewer(c), c.Params("id"), c.Query("after"), c.QueryInt("limit"))
	if err != nil {
		return err
	}
	return c.JSON(tl)
}

// Headers of a signed ingest request.
const (
	headerIngestTimestamp = "X-Switchboard-Timestamp"
	headerIngestSignature = "X-Switchboard-Signature"
)

func (s *Server) linkIdentity(c *fiber.Ctx) error {
	var req api.LinkIdentityRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	id, err := s.deps.Tickets.Link(c.UserContext(), viewer(c), req)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(id)
}

// ingest takes a signed event from an outside channel. It carries no
// bearer token: the HMAC over the raw body is the credential, checked
// before the body is parsed.
func (s *Server) ingest(c *fiber.Ctx) error {
	body := c.Body()
	if err := s.deps.Tickets.VerifyIngest(c.UserContext(), c.Params("channel"),
		c.Get(headerIngestTimestamp), c.Get(headerIngestSignature), body); err != nil {
		return err
	}
	var req api.IngestRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	res, err := s.deps.Tickets.Ingest(c.UserContext(), c.Params("channel"), req)
	if err != nil {
		return err
	}
	status := fiber.StatusCreated
	if res.Duplicate {
		status = fiber.StatusOK
	}
	return c.Status(status).JSON(res)
}

func (s *Server) scheduleFollowUp(c *fiber.Ctx) error {
	var req api.FollowUpRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	fu, err := s.deps.Tickets.ScheduleFollowUp(c.UserContext(), viewer(c), c.Params("id"), req)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(fu)
}
