package mobilecall

import (
	"strings"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/switchboard/switchboard/mobile-sdk/call"
)

// UseLoopback makes cl's calls offer loopback ICE candidates, as the
// test gateway's relay does: the tests run on one machine.
func UseLoopback(cl *Caller) error {
	a, err := call.DefaultAPI(true)
	cl.api = a
	return err
}

// Ufrags are the ICE username fragments of the call's media connection
// now, its own and the gateway's: an ICE restart changes both.
func Ufrags(c *Call) (local, remote string) {
	c.mu.Lock()
	pc := c.call.PeerConnection()
	c.mu.Unlock()
	return ufrag(pc.LocalDescription()), ufrag(pc.RemoteDescription())
}

func ufrag(d *webrtc.SessionDescription) string {
	if d == nil {
		return ""
	}
	_, after, _ := strings.Cut(d.SDP, "a=ice-ufrag:")
	u, _, _ := strings.Cut(after, "\r\n")
	return u
}

// UseClock makes the keyframe requests of cl's calls bounded by now
// instead of time.Now: a test that stops the clock sees coalescing
// without waiting, and moves it on to open the next interval.
func UseClock(cl *Caller, now func() time.Time) { cl.now = now }

// PLIsSent is the number of keyframe requests (PLI) the call's media
// connection has sent for the agent's video, from its statistics.
func PLIsSent(c *Call) uint32 {
	c.mu.Lock()
	pc := c.call.PeerConnection()
	c.mu.Unlock()
	var n uint32
	for _, s := range pc.GetStats() {
		if in, ok := s.(webrtc.InboundRTPStreamStats); ok && in.Kind == "video" {
			n += in.PLICount
		}
	}
	return n
}

// KeyframeAsks is the number of keyframe requests (PLI, FIR) the call
// read for the app's video, told to the listener or coalesced.
func KeyframeAsks(c *Call) int64 { return c.asked.Load() }

// SignalingOf is the call's signaling connection now, to compare: it
// changes when the call moves to a new one.
func SignalingOf(c *Call) any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sig
}
