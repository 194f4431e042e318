package mobilecall

import (
	"strings"

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
