// Package servicetest holds what every harness that starts a real server
// for tests needs (internal/redistest, internal/mosquittotest): finding or
// installing the server's binary, a free loopback port, running the
// process (Proc: start until ready, stop, restart), the tail of its log.
// Test code only.
package servicetest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequireEnv names the variable that turns "the server is missing, skip"
// into a failure, so CI never passes by skipping.
const RequireEnv = "SWITCHBOARD_REQUIRE_SERVICES"

// installTimeout bounds apt-get update plus install; a Debian mirror
// usually takes well under a minute.
const installTimeout = 5 * time.Minute

var (
	installMu   sync.Mutex
	installLogs = map[string]string{} // package list -> what the one attempt did
)

// Binary returns the path of the program name, installing the Debian
// packages pkgs once per process if it is missing and we may (root,
// apt-get). Parallel test binaries (go test ./... runs packages
// concurrently) serialise on a file lock, and each looks again after
// taking it. If the program is still missing, the test is skipped loudly,
// or failed under RequireEnv.
func Binary(tb testing.TB, name string, pkgs ...string) string {
	tb.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	key := strings.Join(pkgs, " ")
	installMu.Lock()
	log, tried := installLogs[key]
	if !tried {
		log = install(tb, name, pkgs)
		installLogs[key] = log
	}
	installMu.Unlock()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	Missing(tb, name, "install attempt: "+log+" (Debian: apt-get install "+key+")")
	return ""
}

// Missing skips the test loudly, or fails it under RequireEnv.
func Missing(tb testing.TB, name, why string) {
	tb.Helper()
	msg := fmt.Sprintf("\n"+
		"************************************************************\n"+
		"%s NOT FOUND; the tests that need it are NOT RUN.\n"+
		"With %s=1 this is a failure, not a skip. %s\n"+
		"************************************************************",
		name, RequireEnv, why)
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

func install(tb testing.TB, name string, pkgs []string) string {
	if os.Geteuid() != 0 {
		return "skipped: not running as root"
	}
	aptGet, err := exec.LookPath("apt-get")
	if err != nil {
		return "skipped: no apt-get"
	}
	unlock, err := lockFile(filepath.Join(os.TempDir(), "switchboard-servicetest-apt.lock"))
	if err != nil {
		return "lock: " + err.Error()
	}
	defer unlock()
	if _, err := exec.LookPath(name); err == nil {
		return "installed by another process"
	}
	tb.Logf("servicetest: %s missing; installing %s with apt-get", name, strings.Join(pkgs, " "))
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	for _, args := range [][]string{
		{"update"},
		append([]string{"install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=120"}, pkgs...),
	} {
		cmd := exec.CommandContext(ctx, aptGet, args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			if len(out) > 800 {
				out = out[len(out)-800:]
			}
			return fmt.Sprintf("apt-get %s: %v: %s", args[0], err, out)
		}
	}
	return "apt-get install succeeded"
}

// FreePort asks the kernel for a free 127.0.0.1 port other than avoid:
// the standard port of a server the machine runs for itself, which is
// not ours to use.
func FreePort(avoid int) (int, error) {
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if port != avoid {
			return port, nil
		}
	}
}

// LogTail returns the last 30 lines of a server's log, for failure
// messages.
func LogTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}
