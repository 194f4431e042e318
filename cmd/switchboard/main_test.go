package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/internal/redistest"
)

// env returns a getenv over a fixed map, so tests never read the real one.
func env(kv ...string) func(string) string {
	// The embedded TURN server's default UDP :3478 and MQTT broker's
	// :1883 (this machine's own Mosquitto holds it) would collide: free
	// ports unless a test says otherwise.
	m := map[string]string{"SWITCHBOARD_TURN_ADDR": "127.0.0.1:0", "SWITCHBOARD_MQTT_ADDR": "127.0.0.1:0", "SWITCHBOARD_MEDIA_UDP_ADDR": "127.0.0.1:0"}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestBadSettingsExit2WithOneLine(t *testing.T) {
	data := t.TempDir()
	cases := []struct {
		name   string
		args   []string
		getenv func(string) string
		want   string
	}{
		{"bad duration env", nil, env("SWITCHBOARD_READ_TIMEOUT", "soon"), "SWITCHBOARD_READ_TIMEOUT"},
		{"bad int env", nil, env("SWITCHBOARD_BODY_LIMIT", "lots"), "SWITCHBOARD_BODY_LIMIT"},
		{"bad addr", []string{"--addr", "nowhere"}, env(), "--addr"},
		{"bad log level", nil, env("SWITCHBOARD_LOG_LEVEL", "loud"), "--log-level"},
		{"bad redis scheme", nil, env("SWITCHBOARD_REDIS_URL", "http://x"), "--redis-url"},
		{"negative timeout", []string{"--write-timeout", "-1s"}, env(), "--write-timeout"},
		{"zero rate", []string{"--rate-subject", "0"}, env(), "--rate-subject"},
		{"bad proxy", []string{"--trusted-proxies", "10.0.0.1,banana"}, env(), "--trusted-proxies"},
		{"jwks without issuer", []string{"--jwks", "/tmp/x.json"}, env(), "--jwks"},
		{"unknown flag", []string{"--colour", "red"}, env(), "colour"},
		{"short ingest secret", nil, env("SWITCHBOARD_INGEST_SECRETS", "email=short"), "--ingest-secrets"},
		{"bad ingest pair", []string{"--ingest-secrets", "nochannel"}, env(), "--ingest-secrets"},
		{"unknown command", []string{"frobnicate"}, env(), "frobnicate"},
		{"recordings kept a minute", []string{"--record-retention", "1m"}, env(), "--record-retention"},
		{"media address without a port", []string{"--media-udp-addr", "7882"}, env(), "--media-udp-addr"},
		{"a port range beside the media address", []string{"--media-ports", "50000-50100"}, env(), "--media-ports"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"serve", "--data", data}, tc.args...)
			if tc.name == "unknown command" {
				args = tc.args
			}
			code := run(t.Context(), args, &stdout, &stderr, tc.getenv)
			if code != exitUsage {
				t.Fatalf("exit %d, want 2; stderr: %s", code, stderr.String())
			}
			msg := stderr.String()
			if tc.name != "unknown flag" && strings.Count(strings.TrimSpace(msg), "\n") != 0 {
				t.Fatalf("want one line, got %q", msg)
			}
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("message %q does not name %s", msg, tc.want)
			}
		})
	}
}

func TestFlagBeatsEnv(t *testing.T) {
	var c Config
	s := newSettings("t", &bytes.Buffer{})
	registerServe(s, &c)
	if err := s.parse([]string{"--addr", ":9000"}, env("SWITCHBOARD_ADDR", ":7000", "SWITCHBOARD_CORS_ORIGINS", "https://a, https://b")); err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":9000" || len(c.HTTP.CORSOrigins) != 2 || c.HTTP.CORSOrigins[1] != "https://b" {
		t.Fatalf("config %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestSanitizedHidesRedisPassword(t *testing.T) {
	c := Config{RedisURL: "redis://user:hunter2@redis:6379/0", IngestSecrets: []string{"email=correct-horse-battery"}}
	if s := fmt.Sprintf("%+v", c.Sanitized()); strings.Contains(s, "hunter2") || strings.Contains(s, "horse") {
		t.Fatalf("sanitized config shows the password: %s", s)
	}
}

func TestTokenCommand(t *testing.T) {
	data := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"token", "--sub", "alice", "--role", "agent", "--ttl", "2h", "--data", data}, &stdout, &stderr, env())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	tok := strings.TrimSuffix(stdout.String(), "\n")
	if strings.ContainsAny(tok, " \n") || strings.Count(tok, ".") != 2 {
		t.Fatalf("stdout is not the token alone: %q", stdout.String())
	}
	keyFile := filepath.Join(data, "keys")
	key, err := auth.LoadOrCreateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := auth.NewVerifier(auth.Config{}, key).Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Subject != "alice" || cl.Role != auth.RoleAgent || time.Until(cl.ExpiresAt.Time) < 119*time.Minute {
		t.Fatalf("claims %+v", cl)
	}
	for _, args := range [][]string{
		{"token", "--role", "agent", "--data", data},
		{"token", "--sub", "a", "--role", "wizard", "--data", data},
		{"token", "--sub", "a", "--role", "agent", "--ttl", "-5m", "--data", data},
	} {
		stdout.Reset()
		if code := run(t.Context(), args, &stdout, &stderr, env()); code != exitUsage || stdout.Len() != 0 {
			t.Fatalf("%v: exit %d, stdout %q", args, code, stdout.String())
		}
	}
}

func TestVersion(t *testing.T) {
	var stdout bytes.Buffer
	if code := run(t.Context(), []string{"version"}, &stdout, &bytes.Buffer{}, env()); code != 0 || !strings.HasPrefix(stdout.String(), "switchboard ") {
		t.Fatalf("exit %d, %q", code, stdout.String())
	}
}

// syncBuffer is a bytes.Buffer safe to write from the server goroutine
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listenLine = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)

// startServe runs `switchboard serve` in process on a free port and returns
// its address and a stop function that cancels (as SIGTERM does) and waits.
func startServe(t *testing.T, data string, extra ...string) (addr string, logs *syncBuffer, stop func() int) {
	t.Helper()
	logs = &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", data}, extra...)
	go func() { done <- run(ctx, args, &bytes.Buffer{}, logs, env()) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := listenLine.FindStringSubmatch(logs.String()); m != nil {
			addr = m[1]
			break
		}
		select {
		case code := <-done:
			cancel()
			t.Fatalf("serve exited %d: %s", code, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("serve did not start: %s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	var once sync.Once
	code := 0
	stop = func() int {
		once.Do(func() {
			cancel()
			code = <-done
		})
		return code
	}
	t.Cleanup(func() { stop() })
	return addr, logs, stop
}

func TestServeZeroConfigRestartKeepsKey(t *testing.T) {
	data := t.TempDir()
	addr, logs, stop := startServe(t, data)
	res, err := http.Get("http://" + addr + "/readyz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", res, err)
	}
	res.Body.Close()

	tok := mintToken(t, data, "zoe", "customer")
	me := func(addr string) int { return getMe(t, addr, tok) }
	if s := me(addr); s != 200 {
		t.Fatalf("/v1/me = %d", s)
	}
	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	// One JSON object per log line, with a request line for /v1/me.
	sawRequest := false
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if m["msg"] == "request" && m["route"] == "/v1/me" && m["request_id"] != "" {
			sawRequest = true
		}
		if strings.Contains(line, tok) {
			t.Fatal("a token was logged")
		}
	}
	if !sawRequest {
		t.Fatal("no access-log line for /v1/me")
	}
	fi, err := os.Stat(filepath.Join(data, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	var keyFiles []string
	filepath.Walk(filepath.Join(data, "keys"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			keyFiles = append(keyFiles, p)
			if info.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want 0600", p, info.Mode().Perm())
			}
		}
		return nil
	})
	if len(keyFiles) == 0 || !fi.IsDir() {
		t.Fatal("no key file written")
	}
	// Restart on the same data: the old token still verifies (same key).
	addr2, _, _ := startServe(t, data)
	if s := me(addr2); s != 200 {
		t.Fatalf("after restart /v1/me = %d", s)
	}
}

// TestServeCPUProfile: --cpu-profile leaves a pprof file (gzipped
// protobuf, owner-only) once serve has drained, and a path that cannot be
// written stops serve at start with a clear error.
func TestServeCPUProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	addr, _, stop := startServe(t, t.TempDir(), "--cpu-profile", path)
	res, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) < 2 || raw[0] != 0x1f || raw[1] != 0x8b || fi.Mode().Perm() != 0o600 {
		t.Fatalf("profile: %d bytes starting % x, mode %v; want gzip, 0600", len(raw), raw[:min(len(raw), 2)], fi.Mode().Perm())
	}

	bad := filepath.Join(t.TempDir(), "missing", "cpu.pprof")
	failsToStart(t, "cpu profile", "--cpu-profile", bad)
}

func TestServePortTaken(t *testing.T) {
	addr, _, _ := startServe(t, t.TempDir())
	failsToStart(t, "listen on "+addr, "--addr", addr)
}

// failsToStart runs serve on a free port and a fresh data directory, with
// extra arguments after those (a flag given twice takes the later value),
// and wants it to exit 1 with want in what it printed.
func failsToStart(t *testing.T, want string, extra ...string) {
	t.Helper()
	var stderr bytes.Buffer
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir()}, extra...)
	if code := run(t.Context(), args, &bytes.Buffer{}, &stderr, env()); code != exitFail || !strings.Contains(stderr.String(), want) {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}

// TestTwoNodesOnRedis runs two gateway nodes on one real redis-server: a
// user's rate limit is shared by both, as the issue requires.
func TestTwoNodesOnRedis(t *testing.T) {
	rs := redistest.Start(t)
	data := t.TempDir()                                                                      // shared: both nodes sign with the same key
	flags := []string{"--redis-url", rs.URL(), "--rate-subject", "3", "--rate-window", "1h"} // one window for the whole test
	a, _, _ := startServe(t, data, flags...)
	b, _, _ := startServe(t, data, flags...)

	tok := mintToken(t, data, "ivy", "customer")
	get := func(addr string) int { return getMe(t, addr, tok) }
	got := []int{get(a), get(b), get(a), get(b)}
	if got[0] != 200 || got[1] != 200 || got[2] != 200 || got[3] != 429 {
		t.Fatalf("statuses across nodes = %v, want 200 200 200 429", got)
	}
	res, err := http.Get("http://" + b + "/readyz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("readyz on Redis: %v %v", res, err)
	}
	res.Body.Close()
}

// mintToken runs `switchboard token` on data and returns the token.
func mintToken(t *testing.T, data, sub, role string) string {
	t.Helper()
	var stdout bytes.Buffer
	if code := run(t.Context(), []string{"token", "--sub", sub, "--role", role, "--data", data}, &stdout, &bytes.Buffer{}, env()); code != 0 {
		t.Fatal("token failed")
	}
	return strings.TrimSpace(stdout.String())
}

// getMe calls GET /v1/me on addr with tok and returns the status.
func getMe(t *testing.T, addr, tok string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+"/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestServeFailedStartReleasesSockets: a start-up that fails after the
// embedded MQTT broker and TURN server took their ports (here the HTTP
// port is taken) gives those ports back. They were closed only by the
// workers' Run, which a failed start-up never reaches.
func TestServeFailedStartReleasesSockets(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mqttAddr := l.Addr().String()
	l.Close()
	p, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	turnAddr := p.LocalAddr().String()
	p.Close()
	var stderr bytes.Buffer
	args := []string{"serve", "--addr", taken.Addr().String(), "--data", t.TempDir(), "--mqtt-addr", mqttAddr, "--turn-addr", turnAddr}
	if code := run(t.Context(), args, &bytes.Buffer{}, &stderr, env()); code != exitFail || !strings.Contains(stderr.String(), "listen on") {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if l, err := net.Listen("tcp", mqttAddr); err != nil {
		t.Errorf("MQTT broker port still held: %v", err)
	} else {
		l.Close()
	}
	if p, err := net.ListenPacket("udp", turnAddr); err != nil {
		t.Errorf("TURN port still held: %v", err)
	} else {
		p.Close()
	}
}
