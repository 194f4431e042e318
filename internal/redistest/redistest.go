package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/servicetest"
)

// Timeouts for one server. A cold redis-server answers PING in a few
// milliseconds; the generous bounds are for loaded CI machines and for a
// restart that replays a long append-only file.
const (
	readyTimeout = 15 * time.Second
	stopTimeout  = 10 * time.Second
	pollEvery    = 20 * time.Millisecond
)

// Server is a redis-server process owned by one test.
type Server struct {
	// Addr is the server's "127.0.0.1:PORT".
	Addr string

	tb   testing.TB
	bin  string
	dir  string
	conf string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
	waitErr error         // cmd.Wait's result, valid after exited is closed
}

// Start runs redis-server on a free 127.0.0.1 port with its data in
// tb.TempDir(), waits until it answers PING, and stops it in tb.Cleanup.
// Persistence is append-only (appendfsync everysec, no RDB snapshots), so
// Restart keeps the data.
//
// If redis-server is missing and cannot be installed, Start skips the test,
// or fails it when SWITCHBOARD_REQUIRE_SERVICES=1.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{tb: tb, bin: binary(tb), dir: tb.TempDir()}
	s.conf = filepath.Join(s.dir, "redis.conf")

	// Another process may take the port between our probe and
	// redis-server's bind; try a few ports before giving up.
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var port int
		if port, err = servicetest.FreePort(6379); err != nil { // never the machine's own Redis
			continue
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err = s.writeConfig(port); err != nil {
			break
		}
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("redistest: tail of %s:\n%s", s.logPath(), s.logTail())
		}
		s.Stop()
	})
	return s
}

// URL returns the server's address as a Redis URL for database 0.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Dir returns the server's data directory.
func (s *Server) Dir() string { return s.dir }

// Stop shuts the server down gracefully (SIGTERM, which flushes the
// append-only file), killing it if it does not exit in time. It is
// idempotent; Start registers it with tb.Cleanup.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

// Restart stops the server and starts it again on the same address and
// data directory, so data written before Stop is still there. Clients
// reconnect to the same Addr.
func (s *Server) Restart() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
	if err := s.startLocked(); err != nil {
		s.tb.Fatalf("redistest: restart: %v", err)
	}
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startLocked()
}

func (s *Server) startLocked() error {
	cmd := exec.Command(s.bin, s.conf)
	cmd.Dir = s.dir
	// redis-server writes to its log file; anything on stdout/stderr is a
	// start-up failure worth showing.
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	s.cmd, s.exited = cmd, exited
	go func() {
		s.waitErr = cmd.Wait()
		close(exited)
	}()

	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("redis-server on %s exited during start-up (%v): %s\n%s",
				s.Addr, s.waitErr, strings.TrimSpace(out.String()), s.logTail())
		default:
		}
		if err := ping(s.Addr); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			s.stopLocked()
			return fmt.Errorf("redis-server on %s not ready after %v: %v\n%s",
				s.Addr, readyTimeout, err, s.logTail())
		}
		time.Sleep(pollEvery)
	}
}

func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return
	case <-time.After(stopTimeout):
	}
	s.tb.Logf("redistest: redis-server on %s ignored SIGTERM for %v; killing it", s.Addr, stopTimeout)
	killProcess(cmd)
	<-exited
}

func (s *Server) writeConfig(port int) error {
	// Quoted values: the data directory may contain spaces.
	conf := fmt.Sprintf(`bind 127.0.0.1
port %d
protected-mode yes
daemonize no
dir %q
logfile %q
save ""
appendonly yes
appendfsync everysec
`, port, s.dir, s.logPath())
	return os.WriteFile(s.conf, []byte(conf), 0o600)
}

func (s *Server) logPath() string { return filepath.Join(s.dir, "redis.log") }

// logTail returns the last lines of the server log, for failure messages.
func (s *Server) logTail() string { return servicetest.LogTail(s.logPath()) }

// ping sends an inline PING and expects +PONG. A server still loading its
// append-only file answers -LOADING, which is "not ready".
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 250*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line = strings.TrimSpace(line); line != "+PONG" {
		return errors.New("PING answered " + line)
	}
	return nil
}
