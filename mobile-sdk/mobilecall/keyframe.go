package mobilecall

import (
	"errors"
	"io"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/switchboard/switchboard/mobile-sdk/call"
)

// keyframeEvery bounds keyframe requests each way: at most one
// OnKeyframeRequest, and at most one PLI to the agent, per 500 ms. A
// keyframe is many times a delta frame's size, and receivers ask again
// on every loss burst and until the keyframe arrives (about a round trip
// later), so honouring every request would flood the link that is
// already losing packets. 500 ms is the gateway relay's own bound per
// source (pliInterval in rtc/relay.go), so neither end asks faster than
// the relay passes on.
const keyframeEvery = 500 * time.Millisecond

// rtcpMTU sizes the buffer an RTCP packet is read into: pion's default
// receive MTU is 1460, and the relay reads with 1500 too.
const rtcpMTU = 1500

// gate lets one keyframe request through per keyframeEvery and drops the
// others. It keeps the leading edge: the first of a burst goes at once,
// and a request dropped is not sent later, because receivers repeat
// theirs while the picture stays broken.
type gate struct {
	mu   sync.Mutex
	last time.Time // zero until the first request passed
}

// pass reports whether a request at now goes through, and if it does,
// starts a new interval.
func (g *gate) pass(now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.last.IsZero() && now.Sub(g.last) < keyframeEvery {
		return false
	}
	g.last = now
	return true
}

// clock is the time keyframe requests are bounded by.
func (c *Call) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// RequestKeyframe asks the agent's encoder for a keyframe (an RTCP PLI),
// for when the app's decoder cannot go on: a decode error, or a frame
// missing. Requests closer than 500 ms to the last one, the app's or
// one sent because a frame was lost, are dropped and return nil; so
// does a request before the agent's video arrived, there being nothing
// to ask for yet. An audio call returns ErrNoVideo.
func (c *Call) RequestKeyframe() error {
	cc, err := c.live()
	if err != nil {
		return err
	}
	if c.video == nil {
		return ErrNoVideo
	}
	return c.askKeyframe(cc, remoteVideoSSRC(cc.PeerConnection()))
}

// askKeyframe sends a PLI for the remote video stream ssrc on cc, unless
// one went less than keyframeEvery ago.
func (c *Call) askKeyframe(cc *call.Call, ssrc uint32) error {
	if ssrc == 0 || !c.askGate.pass(c.clock()) {
		return nil
	}
	return cc.PeerConnection().WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
}

// lostVideo asks for a keyframe after the sample builder gave up a frame
// of ssrc's: the frames after it build on it and will not decode.
func (c *Call) lostVideo(ssrc uint32) {
	if cc, err := c.live(); err == nil {
		_ = c.askKeyframe(cc, ssrc) // a closed connection: the call is going anyway
	}
}

// remoteVideoSSRC is the SSRC of the video the gateway sends on pc (the
// agent's camera), or 0 before it is known.
func remoteVideoSSRC(pc *webrtc.PeerConnection) uint32 {
	for _, r := range pc.GetReceivers() {
		if t := r.Track(); t != nil && t.Kind() == webrtc.RTPCodecTypeVideo {
			return uint32(t.SSRC())
		}
	}
	return 0
}

// readFeedback reads the RTCP that comes back for the app's video on cc,
// in a goroutine that ends when cc's connection closes, and tells the
// listener of keyframe requests (PLI, FIR) that the agent's side sent
// through the relay. Audio calls have nothing to read.
func (c *Call) readFeedback(cc *call.Call) {
	if c.video == nil {
		return
	}
	for _, s := range cc.PeerConnection().GetSenders() {
		if s.Track() == webrtc.TrackLocal(c.video) {
			c.goTracked(func() { c.feedback(s) })
			return
		}
	}
}

func (c *Call) feedback(s *webrtc.RTPSender) {
	buf := make([]byte, rtcpMTU)
	for {
		n, _, err := s.Read(buf)
		if errors.Is(err, io.ErrShortBuffer) {
			continue // an oversized compound packet, dropped: the next one may fit
		}
		if err != nil {
			return // the connection closed
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		// NACKs are dropped: the app keeps no history of sent packets to
		// resend from (call.DefaultAPI has no NACK responder).
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				c.asked.Add(1)
				if c.tellGate.pass(c.clock()) {
					c.callback(func(l Listener) { l.OnKeyframeRequest() })
				}
			}
		}
	}
}
