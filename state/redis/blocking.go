package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/state"
)

// ctlPoolSize is the pool of the control client that sends CLIENT UNBLOCK:
// cancellations are rare and each takes one round trip.
const ctlPoolSize = 4

// unblockRetry is the pause between CLIENT UNBLOCK attempts while a
// cancelled command has not reached the server yet.
const unblockRetry = 2 * time.Millisecond

// blocking runs fn, a command that may block in Redis (XREAD BLOCK,
// XREADGROUP BLOCK), so that cancelling ctx ends it at once.
//
// go-redis turns a context's deadline into a socket deadline but does not
// watch for cancellation, so a cancelled read would wait out its whole
// BLOCK. Here fn runs on a connection of its own whose client ID we know,
// and when ctx is cancelled the control client sends CLIENT UNBLOCK for
// it: Redis answers the blocked command as if it had timed out, and the
// connection stays healthy for the pool. The UNBLOCK is repeated until it
// hits or fn returns, because it can reach Redis before the command it is
// meant to end (they travel on different connections). The extra CLIENT ID
// round trip is paid only by calls that can block and can be cancelled.
func (s *Store) blocking(ctx context.Context, block time.Duration, fn func(c goredis.Cmdable) error) error {
	if block <= 0 || ctx.Done() == nil { // cannot block, or never cancelled
		return fn(s.c)
	}
	conn := s.c.Conn()
	defer conn.Close()
	id, err := conn.ClientID(ctx).Result()
	if err != nil {
		return err
	}
	returned := make(chan struct{})
	unblocked := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(unblocked)
		for {
			uctx, cancel := context.WithTimeout(context.Background(), time.Second)
			n, err := s.ctl.ClientUnblock(uctx, id).Result()
			cancel()
			if n == 1 || err != nil {
				return
			}
			select {
			case <-returned:
				return
			case <-time.After(unblockRetry):
			}
		}
	})
	err = fn(conn)
	close(returned)
	if !stop() {
		<-unblocked // the connection is ours until no UNBLOCK can hit it
	}
	return err
}

// readResult maps the outcome of a blocking stream read: entries as they
// are; a nil reply (BLOCK ran out, or UNBLOCK) is an empty result, or
// ctx's error when ctx is why it ended. Entries that arrive together with
// a cancellation are still returned, so nothing read is dropped.
func (s *Store) readResult(ctx context.Context, op string, res []goredis.XStream, err error) ([]state.Entry, error) {
	switch {
	case err == nil:
		return firstStream(res), nil
	case errors.Is(err, goredis.Nil) && ctx.Err() != nil:
		return nil, fmt.Errorf("state/redis: %s: %w", op, ctx.Err())
	case errors.Is(err, goredis.Nil):
		return []state.Entry{}, nil
	}
	return nil, s.groupErr(ctx, op, err)
}
