package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/servicetest"
)

// Server is a redis-server process owned by one test.
type Server struct {
	// Addr is the server's "127.0.0.1:PORT".
	Addr string

	tb   testing.TB
	bin  string
	dir  string
	conf string
	proc servicetest.Proc
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
		s.proc = servicetest.Proc{Name: "redis-server on " + s.Addr, LogTail: s.logTail,
			Cmd: func() *exec.Cmd {
				cmd := exec.Command(s.bin, s.conf)
				cmd.Dir = s.dir
				return cmd
			},
			// A server still loading its append-only file is not ready.
			Ready: func() error { return ping(s.Addr) }}
		if err = s.proc.Start(); err == nil {
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

// Stop shuts the server down gracefully (SIGTERM, which flushes the
// append-only file), killing it if it does not exit in time. It is
// idempotent; Start registers it with tb.Cleanup.
func (s *Server) Stop() { s.proc.Stop(s.tb) }

// Restart stops the server and starts it again on the same address and
// data directory, so data written before Stop is still there. Clients
// reconnect to the same Addr.
func (s *Server) Restart() {
	s.tb.Helper()
	if err := s.proc.Restart(s.tb); err != nil {
		s.tb.Fatalf("redistest: restart: %v", err)
	}
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
