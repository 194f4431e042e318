package gateway_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/gateway"
	"github.com/switchboard/switchboard/internal/poll"
)

// TestSlowHeadersAreCutOff: a client trickling its request head is
// disconnected by the read timeout, and others are served meanwhile.
func TestSlowHeadersAreCutOff(t *testing.T) {
	e := newEnv(t, gateway.Config{ReadTimeout: 300 * time.Millisecond})
	addr := e.listen(t)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	closed := make(chan error, 1)
	go func() {
		// Trickle one byte at a time until the server hangs up.
		for _, b := range []byte("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaa") {
			if _, err := conn.Write([]byte{b}); err != nil {
				closed <- err
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := io.ReadAll(conn)
		closed <- err
	}()
	// A well-behaved client is served while the slow one trickles.
	res, err := http.Get("http://" + addr + "/healthz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("healthy client: %v %v", res, err)
	}
	res.Body.Close()
	select {
	case <-closed:
	case <-time.After(15 * time.Second):
		t.Fatal("slow client was never cut off")
	}
}

// TestIdleConnectionsAreClosed: 1,000 connections that never send a byte
// are closed by the server's timeouts and do not block anyone else.
func TestIdleConnectionsAreClosed(t *testing.T) {
	e := newEnv(t, gateway.Config{ReadTimeout: 500 * time.Millisecond, IdleTimeout: 500 * time.Millisecond})
	addr := e.listen(t)
	const n = 1000
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	res, err := http.Get("http://" + addr + "/healthz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("client among idlers: %v %v", res, err)
	}
	res.Body.Close()
	for i, c := range conns {
		// The server may say 408 first; what matters is that it hangs up.
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadAll(c); err != nil && !strings.Contains(err.Error(), "connection reset") {
			t.Fatalf("conn %d: want the server to close it, got %v", i, err)
		}
	}
}

// TestOversizedBody: a body over the limit is 413 problem JSON, read no
// further than the limit.
func TestOversizedBody(t *testing.T) {
	e := newEnv(t, gateway.Config{BodyLimit: 1024})
	addr := e.listen(t)
	req, _ := http.NewRequest("POST", "http://"+addr+"/v1/admin/tokens", strings.NewReader(strings.Repeat("a", 64<<10)))
	req.Header.Set("Authorization", "Bearer "+e.token(t, "root", auth.RoleAdmin))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readProblem(t, res, 413, api.CodeTooLarge)
}

// TestHugeAuthorizationHeader: a megabyte of dots never reaches the JWT
// parser: the head is larger than the read buffer, so the server answers
// 431 problem JSON at once (or resets the connection while the client is
// still sending), and a token-sized pile of dots gets 401.
func TestHugeAuthorizationHeader(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	addr := e.listen(t)

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() {
		fmt.Fprintf(conn, "GET /v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", strings.Repeat(".", 1<<20))
	}()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	switch {
	case err == nil:
		readProblem(t, res, 431, api.CodeHeadersTooLarge)
	case strings.Contains(err.Error(), "connection reset"):
	default:
		t.Fatalf("1 MiB header: %v", err)
	}
	t.Logf("1 MiB header refused in %v", time.Since(start))

	req, _ := http.NewRequest("GET", "http://"+addr+"/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+strings.Repeat(".", 8<<10))
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readProblem(t, res, 401, api.CodeUnauthorized)

	res, err = http.Get("http://" + addr + "/healthz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("server after abuse: %v %v", res, err)
	}
	res.Body.Close()
}

func TestCORS(t *testing.T) {
	e := newEnv(t, gateway.Config{CORSOrigins: []string{"https://console.example"}})
	res := e.do(t, "OPTIONS", "/v1/me", "", nil, "Origin", "https://console.example", "Access-Control-Request-Method", "GET")
	if got := res.Header.Get("Access-Control-Allow-Origin"); got != "https://console.example" {
		t.Fatalf("allowed origin got %q", got)
	}
	res = e.do(t, "OPTIONS", "/v1/me", "", nil, "Origin", "https://evil.example", "Access-Control-Request-Method", "GET")
	if got := res.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Fatalf("foreign origin got %q", got)
	}
}

// TestShutdownDrains: a request in flight when shutdown starts completes,
// is told to close its connection, and readiness turns 503 meanwhile.
func TestShutdownDrains(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	release := make(chan struct{})
	started := make(chan struct{})
	e.srv.App().Get("/test/slow", func(c *fiber.Ctx) error {
		close(started)
		<-release
		return c.SendString("done")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(ln) }()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /test/slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started

	shut := make(chan error, 1)
	go func() { shut <- e.srv.Shutdown(t.Context()) }()
	// New connections are refused once the listener is closed.
	poll.Until(t, 5*time.Second, 10*time.Millisecond, func() error {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Close()
			return fmt.Errorf("still accepting")
		}
		return nil
	})
	close(release)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if string(body) != "done" || !res.Close {
		t.Fatalf("in-flight request: %q, close=%v", body, res.Close)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}
