package mobilecall_test

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/mobile-sdk/call"
	"github.com/switchboard/switchboard/mobile-sdk/mobilecall"
)

// stoppedClock moves only when the test moves it: with the app's clock
// stopped every keyframe request after the first of an interval is
// coalesced, however slowly the machine runs.
type stoppedClock struct{ ns atomic.Int64 }

func newStoppedClock() *stoppedClock {
	c := &stoppedClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *stoppedClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *stoppedClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// pli asks the customer's camera for a keyframe n times, one RTCP
// packet each, as a console does on a loss burst.
func (a *agent) pli(t *testing.T, n int) {
	t.Helper()
	ssrc := a.videoSSRC.Load()
	if ssrc == 0 {
		t.Fatal("the agent has no video from the customer")
	}
	for range n {
		if err := a.call.PeerConnection().WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
			t.Fatal(err)
		}
	}
}

// readPLIs counts the keyframe requests that reach the agent's camera
// (its video sender), until the agent's connection closes.
func (a *agent) readPLIs(t *testing.T) *atomic.Int64 {
	t.Helper()
	n := &atomic.Int64{}
	for _, s := range a.call.PeerConnection().GetSenders() {
		if tr := s.Track(); tr == nil || tr.Kind() != webrtc.RTPCodecTypeVideo {
			continue
		}
		go func() {
			buf := make([]byte, 1500)
			for {
				k, _, err := s.Read(buf)
				if errors.Is(err, io.ErrShortBuffer) {
					continue
				}
				if err != nil {
					return
				}
				pkts, _ := rtcp.Unmarshal(buf[:k])
				for _, p := range pkts {
					if _, ok := p.(*rtcp.PictureLossIndication); ok {
						n.Add(1)
					}
				}
			}
		}()
		return n
	}
	t.Fatal("the agent sends no video")
	return nil
}

// TestKeyframeRequests: keyframe requests pass both ways through the
// relay, coalesced. The agent's PLIs for the customer's video reach the
// app's listener as OnKeyframeRequest, once per interval however many
// arrived; the app's RequestKeyframe sends one PLI per interval and it
// reaches the agent's camera; once the call ended RequestKeyframe says so.
func TestKeyframeRequests(t *testing.T) {
	g := startGateway(t)
	a := g.newAgent(t, "ann", "projectors")
	_, caller, ticketID := g.customer(t, "joe")
	clk := newStoppedClock()
	mobilecall.UseClock(caller, clk.now)
	c, l, _, _ := place(t, caller, ticketID, a)
	agentPLIs := a.readPLIs(t)
	flowing(t, l, a, 10)

	// The agent asks in bursts of 10. The relay passes at most one every
	// 500 ms itself (and asked on its own when the call connected), so
	// the agent goes on until two requests reached the app: the app's
	// clock stands still, so the listener must hear one.
	clk.advance(time.Second)
	k0, r0 := l.keyframeCount(), mobilecall.KeyframeAsks(c)
	poll.Until(t, 20*time.Second, 50*time.Millisecond, func() error {
		a.pli(t, 10)
		if r, k := mobilecall.KeyframeAsks(c), l.keyframeCount(); r < r0+2 || k < k0+1 {
			return fmt.Errorf("the app read %d keyframe requests and told %d, want 2 read and 1 told", r-r0, k-k0)
		}
		return nil
	})
	if k, r := l.keyframeCount(), mobilecall.KeyframeAsks(c); k != k0+1 {
		t.Fatalf("%d keyframe requests read, the listener heard %d, want 1", r-r0, k-k0)
	}
	// The next interval lets the next request through, and only that.
	clk.advance(time.Second)
	r1 := mobilecall.KeyframeAsks(c)
	poll.Until(t, 20*time.Second, 50*time.Millisecond, func() error {
		a.pli(t, 10)
		if r, k := mobilecall.KeyframeAsks(c), l.keyframeCount(); r < r1+2 || k < k0+2 {
			return fmt.Errorf("the app read %d more keyframe requests and told %d, want 2 read and 1 told", r-r1, k-k0-1)
		}
		return nil
	})
	if k := l.keyframeCount(); k != k0+2 {
		t.Fatalf("after the second interval the listener heard %d in all, want 2", k-k0)
	}

	// The app asks the agent's camera: one PLI goes out (the connection's
	// own statistics count it), and a second request at once is coalesced.
	p0 := agentPLIs.Load()
	clk.advance(time.Second)
	s0 := mobilecall.PLIsSent(c)
	for i := range 2 {
		if err := c.RequestKeyframe(); err != nil {
			t.Fatal(err)
		}
		if s := mobilecall.PLIsSent(c); s != s0+1 {
			t.Fatalf("after %d RequestKeyframe the app sent %d PLIs, want 1", i+1, s-s0)
		}
	}
	// It reaches the agent's video sender through the relay. The relay
	// too passes one per 500 ms, and asked the agent itself when the call
	// connected: ask again, an interval later each time, until one gets
	// through.
	poll.Until(t, 20*time.Second, 200*time.Millisecond, func() error {
		if agentPLIs.Load() > p0 {
			return nil
		}
		clk.advance(time.Second)
		if err := c.RequestKeyframe(); err != nil {
			return err
		}
		return fmt.Errorf("no keyframe request reached the agent (%d sent)", mobilecall.PLIsSent(c)-s0)
	})

	if err := c.HangUp(); err != nil {
		t.Fatal(err)
	}
	if err := c.RequestKeyframe(); !errors.Is(err, call.ErrEnded) {
		t.Fatalf("RequestKeyframe after the end: %v, want call.ErrEnded", err)
	}
}

// TestKeyframeOnLoss: when a packet of the agent's video is lost, so
// its frame never builds, the app asks the agent for a keyframe by
// itself, and the frames after the lost one still arrive intact.
func TestKeyframeOnLoss(t *testing.T) {
	g := startGateway(t)
	a := g.newAgent(t, "ann", "projectors")
	var err error
	if a.videoRTP, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "agent"); err != nil {
		t.Fatal(err)
	}
	_, caller, ticketID := g.customer(t, "joe")
	clk := newStoppedClock()
	mobilecall.UseClock(caller, clk.now)
	c, l, _, _ := place(t, caller, ticketID, a)

	// The agent's camera, packetized here so one packet can be left out:
	// a video frame takes three packets.
	var drop atomic.Bool
	var lost atomic.Int64
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		pk := rtp.NewPacketizer(1200, 96, 1, &codecs.VP8Payloader{}, rtp.NewRandomSequencer(), 90000)
		tick := time.NewTicker(videoMs * time.Millisecond)
		defer tick.Stop()
		for i := 1; ; i++ {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			pkts := pk.Packetize(frame("agent-video", i), videoMs*90)
			lose := len(pkts) > 2 && drop.CompareAndSwap(true, false)
			for j, p := range pkts {
				if lose && j == 1 {
					lost.Store(int64(i))
					continue
				}
				_ = a.videoRTP.WriteRTP(p)
			}
		}
	}()
	t.Cleanup(func() { close(quit); <-done })
	poll.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		if n := l.count("agent-video"); n < 10 {
			return fmt.Errorf("%d video frames arrived, want 10", n)
		}
		return nil
	})

	clk.advance(time.Second) // whatever the start of the stream asked for is past
	s0 := mobilecall.PLIsSent(c)
	drop.Store(true)
	poll.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		if s := mobilecall.PLIsSent(c); s == s0 {
			return fmt.Errorf("no keyframe request sent after frame %d lost a packet", lost.Load())
		}
		return nil
	})
	i := int(lost.Load())
	poll.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if !l.frames["agent-video"][i+5] {
			return fmt.Errorf("frame %d, 5 after the lost one, did not arrive", i+5)
		}
		return nil
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.frames["agent-video"][i] {
		t.Errorf("frame %d arrived without the packet left out of it", i)
	}
	if len(l.bad) > 0 {
		t.Errorf("damaged frames: %v", l.bad)
	}
}
