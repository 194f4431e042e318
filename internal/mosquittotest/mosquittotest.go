package mosquittotest

import (
	"context"
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

// RequireEnv turns "mosquitto is missing, skip" into a failure.
const RequireEnv = servicetest.RequireEnv

// Server is a mosquitto process owned by one test.
type Server struct {
	// Addr is "127.0.0.1:PORT".
	Addr string

	tb   testing.TB
	bin  string
	dir  string
	conf string
	proc servicetest.Proc
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
		s.proc = servicetest.Proc{Name: "mosquitto on " + s.Addr, LogTail: s.logTail,
			Cmd: func() *exec.Cmd {
				cmd := exec.Command(s.bin, "-c", s.conf)
				cmd.Dir = s.dir
				return cmd
			},
			Ready: func() error {
				c, err := net.DialTimeout("tcp", s.Addr, 250*time.Millisecond)
				if err == nil {
					c.Close()
				}
				return err
			}}
		if err = s.proc.Start(); err == nil {
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
func (s *Server) Stop() { s.proc.Stop(s.tb) }

// Restart stops the broker and starts it again on the same port and data,
// so persistent sessions and queued QoS 1 messages survive.
func (s *Server) Restart() {
	s.tb.Helper()
	if err := s.proc.Restart(s.tb); err != nil {
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
