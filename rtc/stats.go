package rtc

import "context"

// CallStats is how many calls are in each live state now.
type CallStats struct {
	Queued, Ringing, Active int64
}

// CallStats counts the calls queued, ringing and active on every node
// together (the indexes are in the shared store): three reads, for
// metrics. An entry whose call changed state under a node that died is
// removed by the next routing pass or orphan sweep, so a count may run
// that far behind.
func (s *Service) CallStats(ctx context.Context) (CallStats, error) {
	var c CallStats
	for _, x := range []struct {
		ix string
		n  *int64
	}{{ixWaiting, &c.Queued}, {ixRinging, &c.Ringing}, {ixActive, &c.Active}} {
		n, err := s.st.ZCard(ctx, x.ix)
		if err != nil {
			return CallStats{}, err
		}
		*x.n = n
	}
	return c, nil
}
