package redistest

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/switchboard/switchboard/internal/servicetest"
)

// RequireEnv names the variable that turns "redis-server is missing, skip"
// into a failure, so CI never passes by skipping.
const RequireEnv = servicetest.RequireEnv

// BinaryEnv names the variable that points at a specific redis-server
// binary (say, a newer Redis built for CI). When it is set nothing is
// looked up or installed: a missing file there skips or fails the test.
const BinaryEnv = "SWITCHBOARD_REDIS_SERVER"

// binary returns the path of redis-server, from BinaryEnv or found (and
// if need be installed) by servicetest.
func binary(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv(BinaryEnv); p != "" {
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
		servicetest.Missing(tb, "redis-server", fmt.Sprintf("%s=%s is not an executable", BinaryEnv, p))
		return ""
	}
	return servicetest.Binary(tb, "redis-server", "redis-server")
}
