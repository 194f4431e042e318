package redis

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/state"
)

// Config configures the Redis backend.
type Config struct {
	// URL locates the server: redis://[user:pass@]host:port/db, rediss://
	// for TLS, or unix:///path. Required. Client tuning (pool_size,
	// dial_timeout, read_timeout, max_retries, ...) goes in its query, as
	// go-redis ParseURL reads it. Without max_retries, commands are not
	// retried (see New).
	URL string
	// Prefix starts every key and channel name. Empty means "sb:".
	Prefix string
	// SubscriptionBuffer is how many messages a Subscription holds for a
	// slow reader before it drops new ones. Zero means 256.
	SubscriptionBuffer int
}

// DefaultPrefix is the key prefix when Config.Prefix is empty.
const DefaultPrefix = "sb:"

// defaultSubscriptionBuffer is go-redis's own channel size (100) rounded
// up: enough for a burst of signaling messages on one call.
const defaultSubscriptionBuffer = 256

// Store is a state.Store on Redis. It is safe for concurrent use.
type Store struct {
	c      *goredis.Client
	ctl    *goredis.Client // CLIENT UNBLOCK, apart from c (see blocking.go)
	prefix string
	subBuf int

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	mu   sync.Mutex
	subs map[*subscription]struct{} // live subscriptions, closed by Close
}

var _ state.Store = (*Store)(nil)

// errClosed is what every method returns after Close.
var errClosed = fmt.Errorf("state/redis: %w", state.ErrClosed)

// New connects to the server at cfg.URL and checks that it answers.
//
// Unless the URL sets max_retries, go-redis's automatic retry is turned
// off: a command whose reply was lost may already have run, and repeating
// XADD, INCRBY or a compare-and-swap would append twice, count twice or
// report a lost race that was won. The caller sees the error instead.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.URL == "" {
		return nil, fmt.Errorf("state/redis: %w: empty URL", state.ErrInvalidArgument)
	}
	opt, err := goredis.ParseURL(cfg.URL)
	if err != nil {
		// The URL may hold a password: do not echo it.
		return nil, fmt.Errorf("state/redis: %w: bad URL: %v", state.ErrInvalidArgument, redactedError(err))
	}
	if u, err := url.Parse(cfg.URL); err == nil && !u.Query().Has("max_retries") {
		opt.MaxRetries = -1
	}
	// Let a context's deadline bound the socket wait, not only ReadTimeout.
	opt.ContextTimeoutEnabled = true
	if cfg.SubscriptionBuffer < 0 {
		return nil, fmt.Errorf("state/redis: %w: negative SubscriptionBuffer", state.ErrInvalidArgument)
	}
	ctlOpt := *opt
	ctlOpt.PoolSize, ctlOpt.MinIdleConns, ctlOpt.MaxIdleConns = ctlPoolSize, 0, 1
	s := &Store{
		c:      goredis.NewClient(opt),
		ctl:    goredis.NewClient(&ctlOpt),
		prefix: cfg.Prefix,
		subBuf: cfg.SubscriptionBuffer,
		subs:   make(map[*subscription]struct{}),
	}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if s.subBuf == 0 {
		s.subBuf = defaultSubscriptionBuffer
	}
	if err := s.c.Ping(ctx).Err(); err != nil {
		_ = s.c.Close()
		_ = s.ctl.Close()
		return nil, fmt.Errorf("state/redis: ping %s: %w", opt.Addr, err)
	}
	return s, nil
}

// redactedError keeps the shape of a URL parse error without its text,
// which can contain the URL and so the password.
func redactedError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + ": " + ue.Err.Error()
	}
	return err.Error()
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	return s.wrap(ctx, "ping", s.c.Ping(ctx).Err())
}

// Close ends every subscription and closes the client. It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.mu.Lock()
		subs := s.subs
		s.subs = nil
		s.mu.Unlock()
		// In parallel: each Close waits for its own goroutine.
		var wg sync.WaitGroup
		for sub := range subs {
			wg.Go(func() { _ = sub.Close() })
		}
		wg.Wait()
		s.closeErr = errors.Join(s.c.Close(), s.ctl.Close())
	})
	return s.closeErr
}

// Key names. See doc.go for the layout.
func (s *Store) kvKey(k string) string      { return s.prefix + "kv:" + k }
func (s *Store) counterKey(k string) string { return s.prefix + "n:" + k }
func (s *Store) indexKey(k string) string   { return s.prefix + "z:" + k }
func (s *Store) streamKey(k string) string  { return s.prefix + "x:" + k }
func (s *Store) geoKey(k string) string     { return s.prefix + "geo:" + k }
func (s *Store) channel(k string) string    { return s.prefix + "ps:" + k }

// wrap translates a go-redis error into the seam's terms. A command cut
// short by its context's deadline fails in go-redis with a socket timeout;
// the caller gets the context's error instead, which it can test for.
func (s *Store) wrap(ctx context.Context, op string, err error) error {
	switch {
	case err == nil:
		return nil
	case s.closed.Load() || errors.Is(err, goredis.ErrClosed):
		return errClosed
	case errors.Is(err, goredis.Nil):
		return state.ErrNotFound
	case ctx.Err() != nil:
		return fmt.Errorf("state/redis: %s: %w", op, ctx.Err())
	}
	return fmt.Errorf("state/redis: %s: %w", op, err)
}

// check is the preamble of every method: closed store, empty name.
func (s *Store) check(op, name string) error {
	if s.closed.Load() {
		return errClosed
	}
	if name == "" {
		return invalid(op, "empty name")
	}
	return nil
}

// checkMember is check plus a non-empty member, for the Index methods
// that name one (the embedded store keys its buckets by member).
func (s *Store) checkMember(op, name, member string) error {
	if err := s.check(op, name); err != nil {
		return err
	}
	if member == "" {
		return invalid(op, "empty member")
	}
	return nil
}

func invalid(op, format string, args ...any) error {
	return fmt.Errorf("state/redis: %s: %w: %s", op, state.ErrInvalidArgument, fmt.Sprintf(format, args...))
}
