// Package loop runs a background chore every interval until its context
// ends: the shape of every poller in the gateway (follow-ups, offer
// expiry, stale sweeps, retry movers), written once.
package loop

import (
	"context"
	"errors"
	"time"

	"github.com/switchboard/switchboard/state"
)

// Every runs f now and then every d until ctx ends. An error goes to
// warn and the next round tries again; errors caused by the shutdown
// itself (ctx ended, the store closed) are not reported.
func Every(ctx context.Context, d time.Duration, f func(context.Context) error, warn func(error)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		if err := f(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, state.ErrClosed) {
			warn(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
