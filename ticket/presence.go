package ticket

import (
	"context"
	"math"
	"time"

	"github.com/switchboard/switchboard/state"
)

// PresenceTTL is how long a live connection counts as open without being
// refreshed. A Subscription refreshes at a third of it, so one missed
// refresh (a slow store) does not make a user look offline; a node that
// dies stops refreshing and its users look offline within a minute.
const PresenceTTL = 60 * time.Second

// maxConnsTracked bounds the stale entries cleaned per refresh.
const maxConnsTracked = 64

// Presence tells any node whether a user has a live feed open anywhere:
// the Hub knows only its own subscribers. Each open connection is a
// member of an ordered index per user, scored by when it expires, so two
// connections (phone and tablet) do not overwrite each other and one
// closing does not hide the other.
type Presence struct {
	st  state.Store
	now func() time.Time
}

// NewPresence returns presence records on st.
func NewPresence(st state.Store) *Presence { return &Presence{st: st, now: time.Now} }

func ixPresence(user string) string { return "presence:" + user }

// Touch marks connection conn of user open for PresenceTTL and drops the
// user's connections that expired.
func (p *Presence) Touch(ctx context.Context, user, conn string) error {
	now := p.now()
	if err := p.st.ZAdd(ctx, ixPresence(user), conn, float64(now.Add(PresenceTTL).UnixMilli())); err != nil {
		return err
	}
	stale, err := p.st.ZRange(ctx, ixPresence(user), state.RangeOptions{Min: math.Inf(-1), Max: float64(now.UnixMilli()), Limit: maxConnsTracked})
	if err != nil {
		return err
	}
	for _, m := range stale {
		if _, err := p.st.ZRem(ctx, ixPresence(user), m.Member); err != nil {
			return err
		}
	}
	return nil
}

// Leave marks connection conn of user closed.
func (p *Presence) Leave(ctx context.Context, user, conn string) error {
	_, err := p.st.ZRem(ctx, ixPresence(user), conn)
	return err
}

// Online reports whether user has a live connection open on any node.
func (p *Presence) Online(ctx context.Context, user string) (bool, error) {
	ms, err := p.st.ZRange(ctx, ixPresence(user), state.RangeOptions{Min: float64(p.now().UnixMilli()), Max: math.Inf(1), Limit: 1})
	return len(ms) > 0, err
}
