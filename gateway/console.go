package gateway

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"
)

// consoleFiles is the agent video console: plain HTML and JavaScript, no
// build step, embedded in the binary.
//
//go:embed console
var consoleFiles embed.FS

// consoleCSP keeps the console to its own origin: its scripts, its API,
// its WebSockets; media comes from the camera and WebRTC, photos as blobs.
const consoleCSP = "default-src 'self'; img-src 'self' blob:; media-src 'self' blob: mediastream:; " +
	"connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// consoleRoutes serves GET /console/. The page is public (it holds no
// data); everything it shows comes from authenticated API calls.
func (s *Server) consoleRoutes() {
	sub, _ := fs.Sub(consoleFiles, "console")
	s.app.Use("/console", func(c *fiber.Ctx) error {
		c.Set("Content-Security-Policy", consoleCSP)
		c.Set("X-Content-Type-Options", "nosniff")
		c.Set("Referrer-Policy", "no-referrer")
		return c.Next()
	}, filesystem.New(filesystem.Config{Root: http.FS(sub), Index: "index.html", MaxAge: 300}))
}
