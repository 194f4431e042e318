package gateway

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchboard/switchboard/api"
)

// readyTimeout bounds the backend check of /readyz: load balancers probe
// every few seconds and a hung check is as bad as a failed one.
const readyTimeout = time.Second

// healthz says the process is alive; it checks nothing else, so an outage
// of Redis does not make an orchestrator restart every node.
func (s *Server) healthz(c *fiber.Ctx) error {
	return c.JSON(api.Health{Status: "ok"})
}

// readyz says whether this node should get traffic: the state backend
// answers and the node is not draining.
func (s *Server) readyz(c *fiber.Ctx) error {
	checks := map[string]string{"state": "ok"}
	status := "ok"
	ctx, cancel := context.WithTimeout(c.UserContext(), readyTimeout)
	defer cancel()
	if err := s.deps.Store.Ping(ctx); err != nil {
		checks["state"] = "unavailable"
		status = "unavailable"
	}
	if s.draining.Load() {
		checks["node"] = "draining"
		status = "unavailable"
	}
	if status != "ok" {
		c.Status(fiber.StatusServiceUnavailable)
	}
	return c.JSON(api.Health{Status: status, Checks: checks})
}

func (s *Server) metricsHandler() fiber.Handler {
	return adaptor.HTTPHandler(promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
}
