package mobilecall

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/switchboard/switchboard/api"
	sdk "github.com/switchboard/switchboard/mobile-sdk"
	"github.com/switchboard/switchboard/mobile-sdk/call"
)

// hangUpTimeout bounds the hang-up of Close and of a failed Place: they
// run as the app gives up, and without a network the gateway ends the
// call by itself after its reconnect grace anyway.
const hangUpTimeout = 5 * time.Second

// maxData bounds a data channel message: the gateway relays up to 16 KiB,
// the portable SCTP message size (RFC 8831 section 6.6), and silently
// drops bigger ones.
const maxData = 16 << 10

// Call is one placed call. After it ended (either side hung up), its
// methods return call.ErrEnded, except HangUp, which has nothing left to
// do, and Close, which releases what is left.
type Call struct {
	sdk          *sdk.Client
	l            Listener
	id           string                         // set before Place returns, then fixed
	audio, video *webrtc.TrackLocalStaticSample // video is nil on audio calls
	muteAudio    atomic.Bool
	muteVideo    atomic.Bool
	// askGate bounds the PLIs sent to the agent, tellGate the
	// OnKeyframeRequest calls; now is their clock (nil means time.Now),
	// fixed before the call starts.
	askGate, tellGate gate
	now               func() time.Time
	// asked counts the keyframe requests read, told or coalesced (tests
	// read it).
	asked atomic.Int64

	// op serialises the methods that use the call's signaling (SetMuted,
	// HangUp, Reconnect, Rejoin, Close): call.Call swaps its signaling on
	// Reconnect without a lock of its own.
	op sync.Mutex

	mu      sync.Mutex
	call    *call.Call      // replaced by Rejoin
	sig     *call.Signaling // replaced by Reconnect and Rejoin
	server  api.Call        // the gateway's latest word on the call
	iceDown bool            // the media link dropped and is not back yet
	ended   bool
	closed  bool
	told    State // the state the listener last heard
	telling bool  // a goroutine is running OnState (see notify)
	dirty   bool  // the state changed while it was

	// wg counts the goroutines the Call started (signal readers, track
	// and RTCP readers) and inflight the listener calls running, from
	// those and from pion's own goroutines (data channel, ICE). Close
	// waits for both.
	wg       sync.WaitGroup
	inflight sync.WaitGroup
}

func newCall(c *sdk.Client, l Listener, video bool) (*Call, error) {
	a, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "app")
	if err != nil {
		return nil, err
	}
	cl := &Call{sdk: c, l: l, audio: a}
	if video {
		if cl.video, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "app"); err != nil {
			return nil, err
		}
	}
	return cl, nil
}

// start takes over the placed call: it reads sig and watches the media link.
func (c *Call) start(cc *call.Call, sig *call.Signaling, placed api.Call) {
	c.mu.Lock()
	c.id, c.call, c.sig, c.server = cc.ID, cc, sig, placed
	c.wg.Add(1)
	go c.signals(sig)
	c.mu.Unlock()
	c.watch(cc)
	c.readFeedback(cc)
}

// ID is the call's ID, as the gateway and the ticket's timeline name it.
func (c *Call) ID() string { return c.id }

// live returns the call's connection, or why there is none to use.
func (c *Call) live() (*call.Call, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return nil, ErrClosed
	case c.ended:
		return nil, call.ErrEnded
	}
	return c.call, nil
}

// SendData sends a message to the agent's console on the data channel.
// It fails until the channel is open (soon after Place); the gateway
// drops what comes before the agent joined, or while their console is
// slow to take it.
func (c *Call) SendData(msg []byte) error {
	cc, err := c.live()
	if err != nil {
		return err
	}
	if len(msg) > maxData {
		return ErrDataSize
	}
	return cc.SendData(msg)
}

// SetMuted tells the agent the app's mute state, and drops the frames
// of what is muted from then on, so mute holds even if the platform
// keeps capturing.
func (c *Call) SetMuted(audio, video bool) error {
	c.op.Lock()
	defer c.op.Unlock()
	cc, err := c.live()
	if err != nil {
		return err
	}
	c.muteAudio.Store(audio)
	c.muteVideo.Store(video)
	return cc.SetMuted(audio, video)
}

// HangUp ends the call for everyone (or abandons it while it waits); the
// listener hears StateEnded. If the gateway cannot be reached, the media
// still closes, and the gateway ends the call after its reconnect grace.
func (c *Call) HangUp() error {
	c.op.Lock()
	cc, err := c.live()
	if err != nil {
		c.op.Unlock()
		if errors.Is(err, call.ErrEnded) {
			return nil
		}
		return err
	}
	err = c.end(cc, timeout)
	c.op.Unlock()
	c.notify() // not under op: the listener may call SetMuted and the like
	return err
}

// end ends the call at the gateway (over HTTP, which works whatever state
// the signaling is in) and closes the media.
func (c *Call) end(cc *call.Call, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	got, err := c.sdk.EndCall(ctx, c.id)
	if sdk.Code(err) == api.CodeConflict { // it ended meanwhile: the agent hung up
		got, err = c.sdk.Call(ctx, c.id)
	}
	cc.Close()
	c.mu.Lock()
	if got != nil {
		c.server = *got
	}
	c.ended = true
	c.mu.Unlock()
	return wrap(err)
}

// Reconnect brings the media back after a network change (Wi-Fi to
// cellular): a new signaling connection and an ICE restart, with the same
// call and tracks. The gateway keeps the call meanwhile for its reconnect
// grace (30s by default).
func (c *Call) Reconnect() error {
	return c.redial(func(ctx context.Context, cc *call.Call, sig *call.Signaling) (*call.Call, error) {
		return cc, cc.Reconnect(ctx, sig)
	})
}

// Rejoin connects the call again with a new media connection, for when
// Reconnect cannot help because the gateway node that carried the media is
// gone: the node reached now takes the call over, and the agent's console
// rejoins there too. A failed Rejoin may be tried again.
func (c *Call) Rejoin() error {
	return c.redial(func(ctx context.Context, cc *call.Call, sig *call.Signaling) (*call.Call, error) {
		return cc.Rejoin(ctx, sig) // closes cc; Rejoining it again joins anew
	})
}

// redial opens a new signaling connection (every time: after a network
// change the old one may look alive for minutes while what it sends goes
// nowhere), lets connect bring the media back over it, and makes the two
// the call's, watching the media link when connect made a new one.
func (c *Call) redial(connect func(context.Context, *call.Call, *call.Signaling) (*call.Call, error)) error {
	c.op.Lock()
	defer c.op.Unlock()
	cc, err := c.live()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	sig, err := call.Dial(ctx, c.sdk)
	if err != nil {
		return wrap(err)
	}
	nc, err := connect(ctx, cc, sig)
	if err != nil {
		_ = sig.Close()
		return wrap(err)
	}
	c.swap(nc, sig)
	if nc != cc {
		c.watch(nc) // after swap: the watcher ignores a connection not the call's
		c.readFeedback(nc)
	}
	return nil
}

// swap makes cc and sig the call's (with op held, so Close cannot run
// meanwhile), reads sig, and closes the signaling connection it replaces.
func (c *Call) swap(cc *call.Call, sig *call.Signaling) {
	c.mu.Lock()
	old := c.sig
	c.call, c.sig = cc, sig
	c.wg.Add(1)
	go c.signals(sig)
	c.mu.Unlock()
	_ = old.Close()
}

// Close releases the call: it hangs up if the call is still on, and
// stops every goroutine the call started. The listener hears nothing
// after Close was called, and Close returns once the calls already
// running have; so it must not be called from a Listener method. A
// second Close does nothing.
func (c *Call) Close() error {
	c.op.Lock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.op.Unlock()
		return nil
	}
	c.closed = true
	cc, sig, ended := c.call, c.sig, c.ended
	c.mu.Unlock()
	var err error
	if ended {
		cc.Close()
	} else {
		err = c.end(cc, hangUpTimeout)
	}
	_ = sig.Close() // ends the signal reader; the closed media ended the track readers
	c.op.Unlock()
	c.stop()
	return err
}

// stop keeps the listener from being called again and waits for what
// runs: the Call's goroutines, and listener calls from pion's.
func (c *Call) stop() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.wg.Wait()
	c.inflight.Wait()
}

// signals reads one signaling connection until it closes, and tells the
// listener what the gateway says about the call.
func (c *Call) signals(sig *call.Signaling) {
	defer c.wg.Done()
	c.notify() // the state as placed, or as it was before a Reconnect
	for s := range sig.Signals() {
		if s.CallID != c.id {
			continue
		}
		switch s.Type {
		case api.SigCall, api.SigHangUp:
			c.mu.Lock()
			if s.Call != nil {
				c.server = *s.Call
			}
			st := c.server.State
			c.ended = c.ended || s.Type == api.SigHangUp || st == api.CallEnded || st == api.CallMissed
			c.mu.Unlock()
			c.notify()
		case api.SigError:
			c.mu.Lock()
			ended := c.ended // late candidates of an ended call are refused: no news
			c.mu.Unlock()
			if !ended {
				c.callback(func(l Listener) { l.OnError(s.Code + ": " + s.Detail) })
			}
		}
	}
	c.mu.Lock()
	lost := c.sig == sig && !c.ended && !c.closed
	c.mu.Unlock()
	if !lost {
		return
	}
	// The gateway closes signaling when the token it was opened with
	// expires (every access TTL, 15 minutes by default, in a long call):
	// a new connection with a refreshed token takes over, and the media
	// goes on untouched. Once: a connection that cannot be opened again
	// is the app's to see.
	msg := "signaling connection lost: call Reconnect"
	if sig.TokenExpired() {
		err := c.resume()
		if err == nil {
			return
		}
		msg = "signaling connection lost (its token expired; reopening it failed: " + err.Error() + "): call Reconnect"
	}
	c.callback(func(l Listener) { l.OnError(msg) })
}

// resume moves the call to a new signaling connection, media untouched.
func (c *Call) resume() error {
	return c.redial(func(ctx context.Context, cc *call.Call, sig *call.Signaling) (*call.Call, error) {
		return cc, cc.Resume(ctx, sig)
	})
}

// watch follows cc's ICE link: down (a network change) shows as
// reconnecting, up again as the call's state.
func (c *Call) watch(cc *call.Call) {
	pc := cc.PeerConnection()
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) { c.iceChanged(cc, s) })
	c.iceChanged(cc, pc.ICEConnectionState()) // a change before the handler was set
}

func (c *Call) iceChanged(cc *call.Call, s webrtc.ICEConnectionState) {
	var down bool
	switch s {
	case webrtc.ICEConnectionStateConnected, webrtc.ICEConnectionStateCompleted:
	case webrtc.ICEConnectionStateDisconnected, webrtc.ICEConnectionStateFailed:
		down = true
	default:
		return // new and checking say nothing yet; closed is the call's end or a Rejoin
	}
	c.mu.Lock()
	if c.call != cc { // a connection Rejoin replaced
		c.mu.Unlock()
		return
	}
	c.iceDown = down
	c.mu.Unlock()
	c.notify()
}

// stateLocked is the state the app sees, from the gateway's word and the
// media link.
func (c *Call) stateLocked() State {
	switch {
	case c.ended:
		r := c.server.EndReason
		if r == "" {
			r = ReasonHungUp
		}
		return State{State: StateEnded, Reason: r, HungUpBy: c.server.HungUpBy}
	case c.iceDown:
		return State{State: StateReconnecting}
	case c.server.State == api.CallActive:
		return State{State: StateConnected}
	case c.server.State == api.CallRinging:
		return State{State: StateRinging}
	}
	return State{State: StateQueued, Position: c.server.Position, ExpectedWaitSeconds: c.server.ExpectedWaitSeconds}
}

// notify tells the listener the state if it changed. One goroutine at a
// time runs OnState, with no lock held: a change meanwhile is picked up
// by that goroutine once OnState returns. So OnState calls never overlap
// or go out of order, and OnState may call back into the Call.
func (c *Call) notify() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dirty = true
	if c.telling {
		return
	}
	c.telling = true
	for c.dirty && !c.closed {
		c.dirty = false
		s := c.stateLocked()
		if s == c.told || c.told.State == StateEnded { // ended is told once, and last
			continue
		}
		c.told = s
		c.inflight.Add(1)
		c.mu.Unlock()
		c.l.OnState(&s)
		c.inflight.Done()
		c.mu.Lock()
	}
	c.telling = false
}

// callback runs f with the listener unless the call was closed; Close
// waits for the runs in progress.
func (c *Call) callback(f func(Listener)) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.inflight.Add(1)
	c.mu.Unlock()
	defer c.inflight.Done()
	f(c.l)
}

// goTracked starts f in a goroutine Close waits for, unless the call was
// closed.
func (c *Call) goTracked(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
}
