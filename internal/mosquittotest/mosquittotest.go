package mosquittotest

import (
	"bytes"
	"context"
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

// RequireEnv turns "mosquitto is missing, skip" into a failure.
const RequireEnv = servicetest.RequireEnv

// Bounds for one broker: Mosquitto listens within milliseconds; the
// margins are for a loaded CI machine.
const (
	readyTimeout = 15 * time.Second
	stopTimeout  = 10 * time.Second
	pollEvery    = 20 * time.Millisecond
)

// Server is a mosquitto process owned by one test.
type Server struct {
	// Addr is "127.0.0.1:PORT".
	Addr string

	tb   testing.TB
	bin  string
	dir  string
	conf string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start runs mosquitto on a free port with persistence in tb.TempDir()
// (so QoS 1 sessions survive Restart), anonymous access on loopback, and
// stops it in tb.Cleanup.
//
// extra lines are appended to the configuration (say
// "max_inflight_messages 1000" for a throughput benchmark).
func Start(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	s := &Server{tb: tb, bin: binary(tb, "mosquitto"), dir: tb.TempDir()}
	s.conf = filepath.Join(s.dir, "mosquitto.conf")
	var err error
	for range 5 { // the port may be taken between probe and bind
		var port int
		if port, err = servicetest.FreePort(1883); err != nil { // never the machine's own broker
			continue
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		conf := fmt.Sprintf(runAs()+"listener %d 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\nautosave_interval 1\nlog_dest file %s\nmax_queued_messages 0\nmax_inflight_messages 20\n",
			port, s.dir, filepath.Join(s.dir, "mosquitto.log")) + strings.Join(extra, "\n") + "\n"
		if err = os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
			break
		}
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		tb.Fatalf("mosquittotest: %v", err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("mosquittotest: log tail:\n%s", s.logTail())
		}
		s.Stop()
	})
	return s
}

// URL is the broker's address for paho.
func (s *Server) URL() string { return "tcp://" + s.Addr }

// Stop shuts the broker down (SIGTERM saves its persistence file). It is
// idempotent.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

// Restart stops the broker and starts it again on the same port and data,
// so persistent sessions and queued QoS 1 messages survive.
func (s *Server) Restart() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
	var err error
	// The old socket may linger a moment; retry the bind briefly.
	for deadline := time.Now().Add(readyTimeout); ; {
		if err = s.startLocked(); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		s.tb.Fatalf("mosquittotest: restart: %v", err)
	}
}

// Pub runs mosquitto_pub, the command-line client, as an outside client.
func (s *Server) Pub(args ...string) ([]byte, error) {
	bin := binary(s.tb, "mosquitto_pub")
	host, port, _ := net.SplitHostPort(s.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, bin, append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startLocked()
}

func (s *Server) startLocked() error {
	cmd := exec.Command(s.bin, "-c", s.conf)
	cmd.Dir = s.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	s.cmd, s.exited = cmd, exited
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("mosquitto on %s exited during start-up: %s\n%s", s.Addr, strings.TrimSpace(out.String()), s.logTail())
		default:
		}
		c, err := net.DialTimeout("tcp", s.Addr, 250*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			s.stopLocked()
			return fmt.Errorf("mosquitto on %s not listening after %v: %v", s.Addr, readyTimeout, err)
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
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
}

func (s *Server) logTail() string { return servicetest.LogTail(filepath.Join(s.dir, "mosquitto.log")) }

// binary finds name, installing mosquitto and mosquitto-clients if missing.
func binary(tb testing.TB, name string) string {
	tb.Helper()
	return servicetest.Binary(tb, name, "mosquitto", "mosquitto-clients")
}

// runAs keeps mosquitto as the test's user: started as root it would
// otherwise switch to the "mosquitto" user, which cannot write the test's
// temp dir (no log, no persistence, so nothing survives a restart).
func runAs() string {
	if os.Geteuid() == 0 {
		return "user root\n"
	}
	return ""
}
