package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/cors"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/device"
	"github.com/switchboard/switchboard/location"
	"github.com/switchboard/switchboard/media"
	"github.com/switchboard/switchboard/push"
	"github.com/switchboard/switchboard/rtc"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/ticket"
	"github.com/switchboard/switchboard/ticket/webhook"
)

// Deps are the gateway's collaborators, built by cmd/switchboard.
type Deps struct {
	Store    state.Store
	Issuer   *auth.Issuer
	Verifier *auth.Verifier
	Tickets  *ticket.Service
	// Webhooks administers outbound webhooks; nil answers 503 on their routes.
	Webhooks *webhook.Service
	// Hub is the live feed behind GET /v1/stream; nil answers 503 there.
	Hub *ticket.Hub
	// Media takes, checks and serves photos; nil answers 503 on its routes.
	Media *media.Service
	// Location serves positions, stores and dispatch; nil answers 503 there.
	Location *location.Service
	// Devices is the appliance domain; nil answers 503 on its routes.
	Devices *device.Service
	// Push holds push devices, settings and delivery feedback; nil answers
	// 503 on its routes.
	Push *push.Service
	// Calls is click-to-call (queue, routing, signaling, media relay);
	// nil answers 503 on its routes.
	Calls *rtc.Service
	// Logger receives access logs and errors; nil discards them.
	Logger *slog.Logger
	// Registry receives the gateway's metrics and is served on /metrics;
	// nil means a fresh registry.
	Registry *prometheus.Registry
}

// Server is the Switchboard HTTP gateway.
type Server struct {
	cfg      Config
	deps     Deps
	log      *slog.Logger
	app      *fiber.App
	metrics  *metrics
	registry *prometheus.Registry
	// endpoints holds "METHOD /route" for every routed endpoint, so logs and
	// metrics label unmatched requests "unmatched" instead of by raw path.
	endpoints map[string]bool
	draining  atomic.Bool
	tokens    *tokenCache
	sockets   *sockets
}

// New builds the gateway and its routes. cfg must have passed Validate.
func New(cfg Config, deps Deps) *Server {
	cfg = cfg.withDefaults()
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	s := &Server{
		cfg:      cfg,
		deps:     deps,
		log:      deps.Logger.With("component", "gateway"),
		registry: deps.Registry,
		metrics:  newMetrics(deps.Registry),
		tokens:   newTokenCache(deps.Verifier),
		sockets:  newSockets(cfg.SocketsPerUser),
	}
	s.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "switchboard_http_sockets_open",
		Help: "WebSockets and event streams open on this node.",
	}, s.sockets.open))
	fcfg := fiber.Config{
		AppName:               "switchboard",
		DisableStartupMessage: true,
		BodyLimit:             cfg.BodyLimit,
		// Photo uploads stream to disk; limitBody holds every other
		// route to BodyLimit as without streaming.
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		ReadBufferSize:               cfg.HeaderLimit,
		ReadTimeout:                  cfg.ReadTimeout,
		WriteTimeout:                 cfg.WriteTimeout,
		IdleTimeout:                  cfg.IdleTimeout,
		Concurrency:                  cfg.MaxConns,
		ErrorHandler:                 errorHandler(s.log),
		JSONEncoder:                  json.Marshal,
		JSONDecoder:                  json.Unmarshal,
		// The route tree is fixed at start; unknown methods on known paths
		// must be 405, not 404.
		StrictRouting: false,
	}
	if len(cfg.TrustedProxies) > 0 {
		fcfg.EnableTrustedProxyCheck = true
		fcfg.TrustedProxies = cfg.TrustedProxies
		fcfg.ProxyHeader = fiber.HeaderXForwardedFor
	}
	s.app = fiber.New(fcfg)
	s.registerDomainMetrics()
	s.routes()
	s.endpoints = map[string]bool{}
	for _, r := range s.app.GetRoutes(true) {
		s.endpoints[r.Method+" "+r.Path] = true
	}
	return s
}

// routes wires every endpoint. Middleware order matters: observe first so
// every request, failed or not, is logged and counted.
func (s *Server) routes() {
	app := s.app
	app.Use(s.observe)
	if len(s.cfg.CORSOrigins) > 0 {
		app.Use(cors.New(cors.Config{
			AllowOrigins:  strings.Join(s.cfg.CORSOrigins, ","),
			AllowHeaders:  "Authorization, Content-Type, Idempotency-Key, X-Request-ID, Last-Event-ID",
			ExposeHeaders: "X-Request-ID, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset",
			MaxAge:        600,
		}))
	}
	app.Use(s.limitIP)
	app.Use(s.limitBody)

	app.Get("/healthz", s.healthz)
	app.Get("/readyz", s.readyz)
	app.Get("/metrics", s.metricsHandler())
	app.Get("/openapi.json", s.openapi)

	v1 := app.Group("/v1")
	v1.Post("/auth/refresh", s.refresh)
	v1.Get("/me", s.authenticate, s.me)
	v1.Post("/admin/tokens", s.authenticate, requireRole(auth.RoleAdmin), s.idempotent, s.issueTokens)
	s.ticketRoutes(v1)
	s.webhookRoutes(v1)
	s.streamRoutes(v1)
	s.callRoutes(v1)
	s.photoRoutes(v1)
	s.locationRoutes(v1)
	s.pushRoutes(v1)
	s.applianceRoutes(v1)
}

// App exposes the Fiber app, for tests (app.Test) and benchmarks.
func (s *Server) App() *fiber.App { return s.app }

// Serve answers requests on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.app.Listener(ln) }

// Shutdown stops accepting, marks the node not ready, tells keep-alive
// clients to go elsewhere, and waits for requests in flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	return s.app.ShutdownWithContext(ctx)
}
