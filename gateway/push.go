package gateway

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
)

// maxDeviceBody bounds a device registration or settings body: a Web Push
// subscription with its keys is under 1 KiB, an FCM token 4 KiB at most.
const maxDeviceBody = 8 << 10

// pushRoutes wires push: each user's own devices and settings, and the
// admins' view of what could not be delivered.
func (s *Server) pushRoutes(v1 fiber.Router) {
	me := []fiber.Handler{s.authenticate, requireRole(auth.RoleCustomer, auth.RoleTechnician, auth.RoleAgent, auth.RoleAdmin), s.pushConfigured}
	v1.Get("/me/devices", append(me, s.listDevices)...)
	v1.Put("/me/devices/:installation_id", append(me, s.putDevice)...)
	v1.Delete("/me/devices/:installation_id", append(me, s.deleteDevice)...)
	v1.Get("/me/push-settings", append(me, s.getPushSettings)...)
	v1.Put("/me/push-settings", append(me, s.putPushSettings)...)
	admin := []fiber.Handler{s.authenticate, requireRole(auth.RoleAdmin), s.pushConfigured}
	v1.Get("/push/failures", append(admin, s.pushFailures)...)
	v1.Get("/push/pruned", append(admin, s.pushPruned)...)
}

// pushConfigured answers 503 when the server runs without push.
func (s *Server) pushConfigured(c *fiber.Ctx) error {
	if s.deps.Push == nil {
		return problem(503, api.CodeUnavailable, "push notifications are not enabled on this server")
	}
	return c.Next()
}

func smallBody(c *fiber.Ctx) error {
	if len(c.Body()) > maxDeviceBody {
		return problem(413, api.CodeTooLarge, "the body is larger than 8 KiB")
	}
	return nil
}

// putDevice registers or replaces one of the caller's devices. The path
// names the installation; the caller can only ever write their own.
func (s *Server) putDevice(c *fiber.Ctx) error {
	if err := smallBody(c); err != nil {
		return err
	}
	var req api.DeviceRegistration
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	d, err := s.deps.Push.Register(c.UserContext(), claimsOf(c).Subject, c.Params("installation_id"), req)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(d)
}

func (s *Server) deleteDevice(c *fiber.Ctx) error {
	if err := s.deps.Push.Unregister(c.UserContext(), claimsOf(c).Subject, c.Params("installation_id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) listDevices(c *fiber.Ctx) error {
	list, err := s.deps.Push.Devices(c.UserContext(), claimsOf(c).Subject)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(list)
}

func (s *Server) getPushSettings(c *fiber.Ctx) error {
	set, err := s.deps.Push.Settings(c.UserContext(), claimsOf(c).Subject)
	if err != nil {
		return err
	}
	return c.JSON(set)
}

func (s *Server) putPushSettings(c *fiber.Ctx) error {
	if err := smallBody(c); err != nil {
		return err
	}
	var req api.PushSettings
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	set, err := s.deps.Push.SetSettings(c.UserContext(), claimsOf(c).Subject, req)
	if err != nil {
		return err
	}
	return c.JSON(set)
}

func (s *Server) pushFailures(c *fiber.Ctx) error {
	list, err := s.deps.Push.Failures(c.UserContext(), c.QueryInt("limit"), c.Query("cursor"))
	if err != nil {
		return err
	}
	return c.JSON(list)
}

func (s *Server) pushPruned(c *fiber.Ctx) error {
	list, err := s.deps.Push.Pruned(c.UserContext(), c.QueryInt("limit"), c.Query("cursor"))
	if err != nil {
		return err
	}
	return c.JSON(list)
}

// pushDetail is a push error's message without its package prefix and
// sentinel: "push: invalid: token: ..." shows as "token: ...".
func pushDetail(err error) string {
	msg := strings.TrimPrefix(err.Error(), "push: ")
	if _, rest, ok := strings.Cut(msg, ": "); ok {
		return rest
	}
	return msg
}
