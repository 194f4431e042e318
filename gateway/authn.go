package gateway

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
)

// claimsOf returns the verified claims of the request, or nil before
// authenticate ran (or on public routes).
func claimsOf(c *fiber.Ctx) *auth.Claims {
	cl, _ := c.Locals(localClaims).(*auth.Claims)
	return cl
}

// authenticate verifies the bearer access token and applies the
// per-subject rate limit. Every route that touches user data uses it.
func (s *Server) authenticate(c *fiber.Ctx) error {
	h := c.Get(fiber.HeaderAuthorization)
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return problem(401, api.CodeUnauthorized, "a bearer access token is required")
	}
	cl, err := s.tokens.Verify(c.UserContext(), token)
	if err != nil {
		return err
	}
	c.Locals(localClaims, cl)
	if err := s.limit(c, "sub:"+cl.Subject, s.cfg.RateSubject); err != nil {
		return err
	}
	return c.Next()
}

// requireRole lets through only callers holding one of roles; it runs
// after authenticate.
func requireRole(roles ...auth.Role) fiber.Handler {
	return func(c *fiber.Ctx) error {
		cl := claimsOf(c)
		for _, r := range roles {
			if cl != nil && cl.Role == r {
				return c.Next()
			}
		}
		return problem(403, api.CodeForbidden, "this route is not open to your role")
	}
}
