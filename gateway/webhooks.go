package gateway

import (
	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
)

// webhookRoutes wires outbound webhook administration: subscriptions and
// the dead-letter list. Every route is admin only: a webhook ships every
// customer's events to an outside system.
func (s *Server) webhookRoutes(v1 fiber.Router) {
	admin := []fiber.Handler{s.authenticate, requireRole(auth.RoleAdmin), s.webhooksConfigured}
	v1.Post("/webhooks", append(admin, s.idempotent, s.createWebhook)...)
	v1.Get("/webhooks", append(admin, s.listWebhooks)...)
	v1.Delete("/webhooks/:id", append(admin, s.deleteWebhook)...)
	v1.Get("/webhooks/dead-letters", append(admin, s.listDeadLetters)...)
	v1.Post("/webhooks/dead-letters/:id/replay", append(admin, s.idempotent, s.replayDeadLetter)...)
}

// webhooksConfigured answers 503 when the binary was built without a
// webhook service (a gateway in a test, say) instead of failing later.
func (s *Server) webhooksConfigured(c *fiber.Ctx) error {
	if s.deps.Webhooks == nil {
		return problem(503, api.CodeUnavailable, "outbound webhooks are not enabled on this server")
	}
	return c.Next()
}

func (s *Server) createWebhook(c *fiber.Ctx) error {
	var req api.CreateWebhookRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	w, err := s.deps.Webhooks.Create(c.UserContext(), claimsOf(c).Subject, req)
	if err != nil {
		return err
	}
	// The secret is in this answer and nowhere else: keep it out of caches.
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(w)
}

func (s *Server) listWebhooks(c *fiber.Ctx) error {
	list, err := s.deps.Webhooks.List(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(list)
}

func (s *Server) deleteWebhook(c *fiber.Ctx) error {
	if err := s.deps.Webhooks.Delete(c.UserContext(), c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) listDeadLetters(c *fiber.Ctx) error {
	list, err := s.deps.Webhooks.DeadLetters(c.UserContext(), c.QueryInt("limit"), c.Query("cursor"))
	if err != nil {
		return err
	}
	return c.JSON(list)
}

func (s *Server) replayDeadLetter(c *fiber.Ctx) error {
	dl, err := s.deps.Webhooks.Replay(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(dl)
}
