package ticket

import (
	"sync/atomic"

	"github.com/switchboard/switchboard/api"
)

// Stats is a snapshot of what this node's Service did since start, for
// metrics and tests.
type Stats struct {
	// Appended counts the events appended through this node, by type;
	// every known type is present, zero or not.
	Appended map[api.EventType]uint64
}

// appendCounters counts appended events by type. The map is built once
// with every known type and never written again, so Append reads it
// without a lock and pays one atomic add per event.
type appendCounters map[api.EventType]*atomic.Uint64

func newAppendCounters() appendCounters {
	c := make(appendCounters, len(payloadTypes))
	for t := range payloadTypes {
		c[t] = new(atomic.Uint64)
	}
	return c
}

// count records one appended event; unknown types never get this far
// (validatePayload refuses them).
func (c appendCounters) count(t api.EventType) {
	if n := c[t]; n != nil {
		n.Add(1)
	}
}

// Stats returns a snapshot.
func (s *Service) Stats() Stats {
	out := Stats{Appended: make(map[api.EventType]uint64, len(s.appended))}
	for t, n := range s.appended {
		out.Appended[t] = n.Load()
	}
	return out
}
