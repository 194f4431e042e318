package device

import (
	"crypto/hmac"
	"errors"
	"sync/atomic"

	"github.com/switchboard/switchboard/api"
)

// Transport is how frames reached this node; a bounded metric label.
type Transport string

const (
	// TransportHTTP: relayed by the owner's phone (POST or the relay
	// WebSocket).
	TransportHTTP Transport = "http"
	// TransportMQTT: published by the appliance to the broker.
	TransportMQTT Transport = "mqtt"
)

// Refusal is why frames were not recorded; a bounded metric label.
type Refusal string

// Why frames are refused. A relayed batch is checked whole, so every frame
// of a batch that fails counts under the batch's reason; MQTT frames are
// checked one by one.
const (
	// RefusedUnknown: no such appliance, or not the caller's to relay.
	RefusedUnknown Refusal = "unknown_appliance"
	// RefusedUnpaired: MQTT frames of an appliance without an owner.
	RefusedUnpaired Refusal = "unpaired"
	// RefusedMalformed: an MQTT payload that is not a signed frame.
	RefusedMalformed Refusal = "malformed"
	// RefusedSignature: the frame is not authentic (its encoding or its
	// signature does not verify).
	RefusedSignature Refusal = "signature"
	// RefusedContent: a signed frame whose content is refused (a reading
	// out of its range, a time outside the window, another serial).
	RefusedContent Refusal = "content"
)

// refusals lists every Refusal, in the order of frameCounters.refused.
var refusals = [...]Refusal{RefusedUnknown, RefusedUnpaired, RefusedMalformed, RefusedSignature, RefusedContent}

const (
	refusedUnknown = iota
	refusedUnpaired
	refusedMalformed
	refusedSignature
	refusedContent
	numRefusals
)

// FrameStats counts one transport's frames on this node since start.
type FrameStats struct {
	// Accepted frames were written to the ticket stream.
	Accepted uint64
	// Duplicates were dropped as already received.
	Duplicates uint64
	// Refused counts the rest by reason; every Refusal is present.
	Refused map[Refusal]uint64
}

// Stats is a snapshot of the appliance domain on this node, for metrics
// and tests.
type Stats struct {
	// Frames holds both transports.
	Frames map[Transport]FrameStats
}

// frameCounters are one transport's counters: an atomic add per batch
// (or per refused MQTT frame), never a lock.
type frameCounters struct {
	accepted, duplicates atomic.Uint64
	refused              [numRefusals]atomic.Uint64
}

// frameStats are the Service's counters, by transport.
type frameStats struct {
	http, mqtt frameCounters
}

// recorded counts what record did with a batch, accepted and duplicate
// frames (also when all were duplicates, ErrReplayed), and reports
// whether it counted: a store failure counts nothing, as the frames come
// again.
func (c *frameCounters) recorded(res api.DiagnosticsResult, err error) bool {
	if err != nil && !errors.Is(err, ErrReplayed) {
		return false
	}
	c.accepted.Add(uint64(res.Accepted))
	c.duplicates.Add(uint64(res.Duplicates))
	return true
}

// refuse counts n frames refused for reason r (one of the refused*
// indexes).
func (c *frameCounters) refuse(r, n int) { c.refused[r].Add(uint64(n)) }

// refuseAll counts a tally of refused frames, by refused* index.
func (c *frameCounters) refuseAll(n *[numRefusals]int) {
	for r, k := range n {
		if k > 0 {
			c.refuse(r, k)
		}
	}
}

// refusalOf tells why parseFrame refused sf: the authenticity step is
// redone here, on the refusal path only (one HMAC), rather than threaded
// through every check of parseFrame.
func refusalOf(a *appliance, sf api.SignedFrame) int {
	if len(sf.Frame) > frameEnc.EncodedLen(MaxFrameBytes) {
		return refusedSignature
	}
	raw, err := frameEnc.DecodeString(sf.Frame)
	if err != nil {
		return refusedSignature
	}
	sig, err := frameEnc.DecodeString(sf.Sig)
	if err != nil || !hmac.Equal(sig, frameMAC(a.secret, raw)) {
		return refusedSignature
	}
	return refusedContent
}

func (c *frameCounters) snapshot() FrameStats {
	out := FrameStats{Accepted: c.accepted.Load(), Duplicates: c.duplicates.Load(), Refused: make(map[Refusal]uint64, numRefusals)}
	for i, r := range refusals {
		out.Refused[r] = c.refused[i].Load()
	}
	return out
}

// Stats returns a snapshot.
func (s *Service) Stats() Stats {
	return Stats{Frames: map[Transport]FrameStats{TransportHTTP: s.frames.http.snapshot(), TransportMQTT: s.frames.mqtt.snapshot()}}
}

// Queued is how many received MQTT frames wait to be recorded on this
// node: the length of the workers' queues, read without a lock.
func (m *MQTT) Queued() int {
	n := 0
	for _, q := range m.qs {
		n += len(q)
	}
	return n
}
