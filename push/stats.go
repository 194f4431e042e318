package push

import "sync/atomic"

// Stats is a snapshot of this node's push work since start, for metrics
// and tests. Sent, the failures and DeadLettered count messages (one per
// device of a notification); Skipped and QuietHeld count notifications.
type Stats struct {
	// Sent: messages a push service accepted.
	Sent uint64
	// Transient: messages that failed for now (5xx, 429, network) and are
	// retried, unless they were on their last attempt.
	Transient uint64
	// Unregistered: messages to a dead token or subscription; the device
	// was removed.
	Unregistered uint64
	// Refused: messages the push service refused for good for another
	// reason.
	Refused uint64
	// DeadLettered: messages given up after the last attempt failed.
	DeadLettered uint64
	// Skipped: notifications not sent because the recipient had the live
	// feed open, which shows the event itself.
	Skipped uint64
	// QuietHeld: notifications held for the recipient's quiet hours; they
	// go out when the hours end, and count again each time they are held.
	QuietHeld uint64
}

// counters are what Stats reads: one atomic add per message or
// notification.
type counters struct {
	sent, transient, unregistered, refused, deadLettered, skipped, quietHeld atomic.Uint64
}

// countResults records what the push services said about one batch.
func (c *counters) countResults(rs []Result) {
	var n [Failed + 1]uint64
	for _, r := range rs {
		n[r.Outcome]++
	}
	c.sent.Add(n[Delivered])
	c.transient.Add(n[Retry])
	c.unregistered.Add(n[Gone])
	c.refused.Add(n[Failed])
}

// Stats returns a snapshot.
func (s *Service) Stats() Stats {
	c := &s.stats
	return Stats{Sent: c.sent.Load(), Transient: c.transient.Load(), Unregistered: c.unregistered.Load(),
		Refused: c.refused.Load(), DeadLettered: c.deadLettered.Load(), Skipped: c.skipped.Load(), QuietHeld: c.quietHeld.Load()}
}
