package redistest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// RequireEnv names the variable that turns "redis-server is missing, skip"
// into a failure, so CI never passes by skipping.
const RequireEnv = "SWITCHBOARD_REQUIRE_SERVICES"

// BinaryEnv names the variable that points at a specific redis-server
// binary (say, a newer Redis built for CI). When it is set nothing is
// looked up or installed: a missing file there skips or fails the test.
const BinaryEnv = "SWITCHBOARD_REDIS_SERVER"

// installTimeout bounds apt-get update plus install; a Debian mirror
// usually takes well under a minute.
const installTimeout = 5 * time.Minute

var (
	installOnce sync.Once
	installLog  string // what the install attempt did, for the skip message
)

// binary returns the path of redis-server, installing the Debian package
// once per process if it is missing and we may (root, apt-get). Parallel
// test binaries (go test ./... runs packages concurrently) serialise on a
// file lock, and each re-checks the path after taking it.
func binary(tb testing.TB) string {
	tb.Helper()
	var why string
	if p := os.Getenv(BinaryEnv); p != "" {
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
		why = fmt.Sprintf("%s=%s is not an executable", BinaryEnv, p)
	} else {
		if p, err := exec.LookPath("redis-server"); err == nil {
			return p
		}
		installOnce.Do(func() { installLog = install(tb) })
		if p, err := exec.LookPath("redis-server"); err == nil {
			return p
		}
		why = "install attempt: " + installLog
	}
	missing(tb, why)
	return ""
}

// missing skips the test loudly, or fails it under RequireEnv.
func missing(tb testing.TB, why string) {
	tb.Helper()
	msg := fmt.Sprintf("\n"+
		"************************************************************\n"+
		"redistest: redis-server NOT FOUND; tests against Redis are NOT RUN.\n"+
		"Install it (Debian/Ubuntu: apt-get install redis-server); with %s=1\n"+
		"this is a failure, not a skip. %s\n"+
		"************************************************************",
		RequireEnv, why)
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

func install(tb testing.TB) string {
	if os.Geteuid() != 0 {
		return "skipped: not running as root"
	}
	aptGet, err := exec.LookPath("apt-get")
	if err != nil {
		return "skipped: no apt-get"
	}
	unlock, err := lockFile(filepath.Join(os.TempDir(), "switchboard-redistest-apt.lock"))
	if err != nil {
		return "lock: " + err.Error()
	}
	defer unlock()
	// Another test binary may have installed it while we waited.
	if _, err := exec.LookPath("redis-server"); err == nil {
		return "installed by another process"
	}
	tb.Logf("redistest: redis-server missing; installing the Debian package (apt-get update && apt-get install redis-server)")
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	for _, args := range [][]string{
		{"update"},
		{"install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=120", "redis-server"},
	} {
		cmd := exec.CommandContext(ctx, aptGet, args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Sprintf("apt-get %s: %v: %s", args[0], err, tail(out, 800))
		}
	}
	return "apt-get install redis-server succeeded"
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
