package gateway

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/device"
)

// applianceRoutes wires the appliance domain: factory import, pairing,
// relayed diagnostics (POST, or the relay WebSocket), live view under
// consent, commands. Which caller may touch which appliance is decided by
// the device service (an appliance that is not yours is 404); roles are
// checked here first.
func (s *Server) applianceRoutes(v1 fiber.Router) {
	on := []fiber.Handler{s.authenticate, s.devicesConfigured}
	with := func(hs ...fiber.Handler) []fiber.Handler { return append(append([]fiber.Handler{}, on...), hs...) }
	v1.Post("/appliances", with(requireRole(auth.RoleAdmin), s.idempotent, s.importAppliances)...)
	v1.Post("/appliances/pair", with(requireRole(auth.RoleCustomer), s.idempotent, s.pairAppliance)...)
	v1.Get("/appliances/:id", with(s.getAppliance)...)
	v1.Delete("/appliances/:id/owner", with(requireRole(auth.RoleCustomer, auth.RoleAdmin), s.releaseAppliance)...)
	v1.Post("/appliances/:id/relay-token", with(requireRole(auth.RoleCustomer, auth.RoleDevice), s.refreshRelayToken)...)
	v1.Post("/appliances/:id/diagnostics", with(requireRole(auth.RoleDevice), s.relayDiagnostics)...)
	v1.Get("/appliances/:id/relay", s.checkOrigin, s.streamAuth, s.socketLimit, s.devicesConfigured, requireRole(auth.RoleDevice), s.relayUpgrade())
	v1.Get("/appliances/:id/diagnostics", with(requireRole(auth.RoleCustomer, auth.RoleAgent, auth.RoleAdmin), s.liveDiagnostics)...)
	v1.Post("/appliances/:id/commands", with(requireRole(auth.RoleAgent, auth.RoleAdmin), s.idempotent, s.sendCommand)...)
	v1.Get("/appliances/:id/commands", with(requireRole(auth.RoleDevice), s.pendingCommands)...)
	v1.Post("/appliances/:id/grants", with(requireRole(auth.RoleCustomer), s.grantConsent)...)
	v1.Delete("/appliances/:id/grants", with(requireRole(auth.RoleCustomer), s.revokeConsent)...)
}

func (s *Server) devicesConfigured(c *fiber.Ctx) error {
	if s.deps.Devices == nil {
		return problem(503, api.CodeUnavailable, "appliances are not enabled on this server")
	}
	return c.Next()
}

func caller(c *fiber.Ctx) device.Caller { return device.CallerFrom(claimsOf(c)) }

func (s *Server) importAppliances(c *fiber.Ctx) error {
	var req api.ImportAppliancesRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	res, err := s.deps.Devices.Import(c.UserContext(), req)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(res)
}

func (s *Server) pairAppliance(c *fiber.Ctx) error {
	var req api.PairRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	res, err := s.deps.Devices.Pair(c.UserContext(), caller(c), req)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store") // a token is in it
	return c.JSON(res)
}

func (s *Server) getAppliance(c *fiber.Ctx) error {
	a, err := s.deps.Devices.Get(c.UserContext(), caller(c), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(a)
}

func (s *Server) releaseAppliance(c *fiber.Ctx) error {
	if err := s.deps.Devices.Release(c.UserContext(), caller(c), c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) refreshRelayToken(c *fiber.Ctx) error {
	t, err := s.deps.Devices.RefreshRelayToken(c.UserContext(), caller(c), c.Params("id"))
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(t)
}

func (s *Server) relayDiagnostics(c *fiber.Ctx) error {
	var req api.DiagnosticsBatch
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	res, err := s.deps.Devices.Relay(c.UserContext(), caller(c), c.Params("id"), req.Frames)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(res)
}

func (s *Server) liveDiagnostics(c *fiber.Ctx) error {
	l, err := s.deps.Devices.Live(c.UserContext(), caller(c), c.Params("id"))
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(l)
}

func (s *Server) sendCommand(c *fiber.Ctx) error {
	var req api.CommandRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	cmd, err := s.deps.Devices.Command(c.UserContext(), caller(c), c.Params("id"), req)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(cmd)
}

func (s *Server) pendingCommands(c *fiber.Ctx) error {
	l, err := s.deps.Devices.PendingCommands(c.UserContext(), caller(c), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(l)
}

func (s *Server) grantConsent(c *fiber.Ctx) error {
	var req api.GrantRequest
	if len(c.Body()) > 0 {
		if err := bindJSON(c, &req); err != nil {
			return err
		}
	}
	g, err := s.deps.Devices.Grant(c.UserContext(), caller(c), c.Params("id"), req)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(g)
}

func (s *Server) revokeConsent(c *fiber.Ctx) error {
	if err := s.deps.Devices.Revoke(c.UserContext(), caller(c), c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// deviceProblem maps the device domain's errors; nil for anything else.
func deviceProblem(err error) *problemError {
	var locked *device.LockedError
	switch {
	case errors.As(err, &locked):
		return &problemError{status: 429, code: api.CodeRateLimited, detail: "too many wrong pairing codes; try again later", retryAfter: locked.RetryAfterSeconds}
	case errors.Is(err, device.ErrNotFound):
		return &problemError{status: 404, code: api.CodeNotFound, detail: "no such appliance"}
	case errors.Is(err, device.ErrInvalid):
		return &problemError{status: 422, code: api.CodeValidation, detail: deviceDetail(err, device.ErrInvalid)}
	case errors.Is(err, device.ErrBadCode):
		return &problemError{status: 403, code: api.CodePairingCodeWrong, detail: "the pairing code is wrong for this serial"}
	case errors.Is(err, device.ErrCodeExpired):
		return &problemError{status: 410, code: api.CodePairingCodeExpired, detail: "the pairing code has expired; enter the one the appliance shows now"}
	case errors.Is(err, device.ErrCodeUsed):
		return &problemError{status: 409, code: api.CodePairingCodeUsed, detail: "this pairing code was already used; wait for the next one"}
	case errors.Is(err, device.ErrOwned):
		return &problemError{status: 409, code: api.CodeApplianceOwned, detail: "the appliance has another owner; they must release it, or pair with the code shown after a factory reset"}
	case errors.Is(err, device.ErrBadFrame):
		return &problemError{status: 422, code: api.CodeBadFrame, detail: deviceDetail(err, device.ErrBadFrame) + "; nothing of the batch was written"}
	case errors.Is(err, device.ErrReplayed):
		return &problemError{status: 409, code: api.CodeFramesReplayed, detail: "every frame of the batch was already received"}
	case errors.Is(err, device.ErrNoConsent):
		return &problemError{status: 403, code: api.CodeNoConsent, detail: "the owner has not granted live access to this appliance"}
	case errors.Is(err, device.ErrForbidden):
		return &problemError{status: 403, code: api.CodeForbidden, detail: deviceDetail(err, device.ErrForbidden)}
	case errors.Is(err, device.ErrTooMany):
		return &problemError{status: 429, code: api.CodeRateLimited, detail: deviceDetail(err, device.ErrTooMany), retryAfter: 60}
	}
	return nil
}

// deviceDetail is the message after the sentinel's text.
func deviceDetail(err, sentinel error) string {
	msg := err.Error()
	if _, rest, ok := strings.Cut(msg, sentinel.Error()+": "); ok {
		return rest
	}
	return strings.TrimPrefix(msg, "device: ")
}
