// Package backend is the one factory that chooses the state backend: no
// Redis URL means the embedded store in the data directory, a redis:// or
// rediss:// URL means Redis, and anything else is an error.
package backend

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"

	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/embedded"
	"github.com/switchboard/switchboard/state/redis"
)

// Config selects and configures the backend.
type Config struct {
	// RedisURL, when set, selects Redis (redis://, rediss:// or unix://).
	RedisURL string
	// RedisPrefix namespaces every key. Empty means "sb:".
	RedisPrefix string
	// DataDir holds the embedded store's file when RedisURL is empty.
	DataDir string
	// Logger receives the Redis client's own messages. Nil leaves them on
	// stderr.
	Logger *slog.Logger
}

// Validate checks the URL scheme without connecting.
func (c Config) Validate() error {
	if c.RedisURL == "" {
		if c.DataDir == "" {
			return fmt.Errorf("data directory is empty")
		}
		return nil
	}
	u, err := url.Parse(c.RedisURL)
	if err != nil {
		return fmt.Errorf("not a URL")
	}
	switch u.Scheme {
	case "redis", "rediss", "unix":
		return nil
	}
	return fmt.Errorf("unknown scheme %q (want redis://, rediss:// or unix://)", u.Scheme)
}

// Open opens the configured backend.
func Open(ctx context.Context, c Config) (state.Store, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.RedisURL == "" {
		return embedded.Open(filepath.Join(c.DataDir, "state"))
	}
	if c.Logger != nil {
		redis.SetLogger(c.Logger)
	}
	return redis.New(ctx, redis.Config{URL: c.RedisURL, Prefix: c.RedisPrefix})
}
