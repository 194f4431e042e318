package gateway

import (
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/api"
)

// limitIP applies the per-IP limit to every request, authenticated or not.
func (s *Server) limitIP(c *fiber.Ctx) error {
	if err := s.limit(c, "ip:"+c.IP(), s.cfg.RateIP); err != nil {
		return err
	}
	return c.Next()
}

// limit counts one request against who in the current fixed window. The
// counter lives in the state seam, so with Redis the limit holds across all
// gateway nodes. A fixed window lets a client burst up to twice the limit at
// a window edge; that is the accepted price of one atomic INCR per request.
func (s *Server) limit(c *fiber.Ctx, who string, max int) error {
	if max < 0 {
		return nil
	}
	window := s.cfg.RateWindow
	now := time.Now()
	slot := now.UnixNano() / int64(window)
	key := "rl:" + who + ":" + strconv.FormatInt(slot, 10)
	n, err := s.deps.Store.Incr(c.UserContext(), key, 1, window)
	if err != nil {
		// Fail open: a storage hiccup must not take the whole API down;
		// authentication still guards every route.
		s.log.Warn("rate limit unavailable", "err", err, "request_id", requestID(c))
		return nil
	}
	reset := time.Unix(0, (slot+1)*int64(window)).Sub(now)
	resetSec := int(reset.Seconds()) + 1
	remaining := int64(max) - n
	if remaining < 0 {
		remaining = 0
	}
	c.Set("RateLimit-Limit", strconv.Itoa(max))
	c.Set("RateLimit-Remaining", strconv.FormatInt(remaining, 10))
	c.Set("RateLimit-Reset", strconv.Itoa(resetSec))
	if n > int64(max) {
		return &problemError{status: 429, code: api.CodeRateLimited,
			detail: "too many requests; slow down", retryAfter: resetSec}
	}
	return nil
}
