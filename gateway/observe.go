package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	headerRequestID = "X-Request-ID"
	localRequestID  = "request_id"
	localClaims     = "claims"
	// maxRequestIDLen bounds a client-supplied request ID so it cannot
	// bloat our logs; longer or odd ones are replaced with our own.
	maxRequestIDLen = 64
)

// requestID returns the request's ID (set by the first middleware).
func requestID(c *fiber.Ctx) string {
	id, _ := c.Locals(localRequestID).(string)
	return id
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validRequestID accepts a caller's ID only if it is short and plain, so a
// load balancer's trace ID carries through but log injection does not.
func validRequestID(s string) bool {
	if s == "" || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// metrics are the HTTP series on /metrics, labelled by route template
// (never by raw path, which would let clients mint series at will).
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_http_requests_total",
			Help: "HTTP requests by route template, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchboard_http_request_duration_seconds",
			Help:    "HTTP request latency by route template and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

// observe is the outermost middleware: it assigns the request ID, recovers
// panics, and writes one access-log line and the metrics for every request,
// including those that end in an error.
func (s *Server) observe(c *fiber.Ctx) (err error) {
	start := time.Now()
	rid := c.Get(headerRequestID)
	if !validRequestID(rid) {
		rid = newRequestID()
	}
	c.Locals(localRequestID, rid)
	c.Set(headerRequestID, rid)

	func() {
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("panic in handler", "request_id", rid, "panic", r)
				err = problem(500, "internal", "the server failed; the request ID identifies it in the logs")
			}
		}()
		err = c.Next()
	}()
	if err != nil {
		// Render now so the status below is the one the client gets.
		if herr := s.app.ErrorHandler(c, err); herr != nil {
			_ = c.SendStatus(fiber.StatusInternalServerError)
		}
		err = nil
	}
	if s.draining.Load() {
		// Tell keep-alive clients to reconnect, likely to another node.
		c.Response().SetConnectionClose()
	}

	status := c.Response().StatusCode()
	route := "unmatched"
	if r := c.Route(); s.endpoints[r.Method+" "+r.Path] {
		route = r.Path
	}
	elapsed := time.Since(start)
	// Body() would read a streamed body (SSE) to its end, blocking the
	// request forever and holding the whole stream in memory: count only
	// bodies that are already in memory.
	size := 0
	if !c.Response().IsBodyStream() {
		size = len(c.Response().Body())
	}
	// Fiber's Method() points into the request buffer, which the next
	// request reuses; a label value kept by the registry must be a copy,
	// or a later request rewrites it ("POST" became "GETT") and /metrics
	// fails on the duplicate series.
	method := strings.Clone(c.Method())
	s.metrics.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	s.metrics.latency.WithLabelValues(route, method).Observe(elapsed.Seconds())

	attrs := []slog.Attr{
		slog.String("request_id", rid),
		slog.String("method", c.Method()),
		slog.String("route", route),
		slog.String("path", c.Path()),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		slog.String("ip", c.IP()),
		slog.Int("bytes", size),
	}
	if cl := claimsOf(c); cl != nil {
		attrs = append(attrs, slog.String("sub", cl.Subject), slog.String("role", string(cl.Role)))
	}
	s.log.LogAttrs(c.Context(), slog.LevelInfo, "request", attrs...)
	return nil
}
