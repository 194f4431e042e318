package gateway_test

import (
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/gateway"
)

// BenchmarkStack compares an authenticated JSON GET through the whole
// middleware stack (request ID, access log, metrics, recovery, IP and
// subject rate limits in the state seam, JWT auth) with the same route on
// a bare Fiber app, over loopback TCP. The goal: full >= 0.7x bare.
//
//	go test -run x -bench Stack -benchtime 3s ./gateway/
func BenchmarkStack(b *testing.B) {
	b.Run("bare", func(b *testing.B) {
		app := fiber.New(fiber.Config{DisableStartupMessage: true})
		app.Get("/v1/me", func(c *fiber.Ctx) error {
			return c.JSON(api.Me{Subject: "alice", Role: "customer"})
		})
		ln := listenBench(b, app.Listener)
		benchGet(b, ln, "")
	})
	b.Run("full", func(b *testing.B) {
		e := newEnv(b, gateway.Config{RateIP: 1 << 30, RateSubject: 1 << 30})
		ln := listenBench(b, e.srv.Serve)
		benchGet(b, ln, e.token(b, "alice", auth.RoleCustomer))
	})
	b.Run("full+jsonlog", func(b *testing.B) {
		// As production runs it: a JSON access-log line per request.
		e := newEnvLogged(b, gateway.Config{RateIP: 1 << 30, RateSubject: 1 << 30}, slog.New(slog.NewJSONHandler(io.Discard, nil)))
		ln := listenBench(b, e.srv.Serve)
		benchGet(b, ln, e.token(b, "alice", auth.RoleCustomer))
	})
}

func listenBench(b *testing.B, serve func(net.Listener) error) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go serve(ln)
	b.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

func benchGet(b *testing.B, addr, token string) {
	client := &fasthttp.HostClient{Addr: addr, MaxConns: 64}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(res)
		req.SetRequestURI("http://" + addr + "/v1/me")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for pb.Next() {
			if err := client.Do(req, res); err != nil || res.StatusCode() != 200 {
				b.Errorf("status %d: %v", res.StatusCode(), err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
