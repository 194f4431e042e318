package redistest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/internal/redistest"
)

func TestStartRestartKeepsData(t *testing.T) {
	srv := redistest.Start(t)
	if srv.Addr == "127.0.0.1:6379" {
		t.Fatal("started on the default port")
	}
	opt, err := redis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	opt.MaxRetries = -1
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// No RDB snapshots: persistence is append-only.
	if got := c.ConfigGet(ctx, "appendonly").Val()["appendonly"]; got != "yes" {
		t.Fatalf("appendonly = %q", got)
	}
	if got := c.ConfigGet(ctx, "save").Val()["save"]; got != "" {
		t.Fatalf("save = %q", got)
	}

	srv.Restart()
	got, err := c.Get(ctx, "k").Result()
	if err != nil || got != "v" {
		t.Fatalf("after restart: %q, %v", got, err)
	}

	srv.Stop()
	srv.Stop() // idempotent
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("ping after Stop succeeded")
	}
}

func TestParallelServers(t *testing.T) {
	a, b := redistest.Start(t), redistest.Start(t)
	if a.Addr == b.Addr {
		t.Fatalf("two servers on %s", a.Addr)
	}
}

// TestMissingBinary runs this test binary again with redis-server pointed
// at nothing, and checks that Start skips loudly, or fails when services
// are required. (The env override keeps the check from ever installing.)
func TestMissingBinary(t *testing.T) {
	if os.Getenv("REDISTEST_CHILD") == "1" {
		redistest.Start(t)
		t.Fatal("Start returned without a binary")
	}
	for _, c := range []struct {
		require string
		want    string
	}{{"", "--- SKIP"}, {"1", "--- FAIL"}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMissingBinary$", "-test.v")
		cmd.Env = append(os.Environ(), "REDISTEST_CHILD=1",
			redistest.BinaryEnv+"=/nonexistent/redis-server",
			redistest.RequireEnv+"="+c.require)
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), c.want) || !strings.Contains(string(out), "NOT FOUND") {
			t.Errorf("%s=%q: want %s with a loud message, got:\n%s", redistest.RequireEnv, c.require, c.want, out)
		}
	}
}
